"""A gcp source split by folder as a whole: every named folder was collected in its last run
window. The source's scope (provider `gcp-folders`) holds a record per named folder
(`gcp.folders.member`): its unit's last collection and the projects its evidence holds."""

from __future__ import annotations

from checks.registry import ScopeView, scope_check
from checks.units import every_unit_collected
from collector.model import Verdict

MEMBER = "gcp.folders.member"


@scope_check(
    "gcp-folders.every_folder_collected",
    scope="gcp-folders.source",
    uses=(MEMBER,),
    title="Every named folder was collected in its last run window",
    controls={
        "A.5.9": "the inventory covers every project below the named folders, each folder "
                 "with a dated record no older than its collection schedule",
        "A.5.36": "every folder is under continuous control monitoring: none drops out "
                  "unnoticed because Cloud Asset Viewer was removed from it or its collection "
                  "fails",
    },
    severity="high",
    remediation="Grant the collector's identity Cloud Asset Viewer on the folders named, and "
                "look at their last run's error.",
)
def every_folder_collected(source: ScopeView) -> Verdict:
    return every_unit_collected(source.of(MEMBER), "folder", "folders",
                                "the source names no folder")
