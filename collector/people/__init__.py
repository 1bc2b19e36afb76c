"""People across sources: the identities of every source joined into the people of the
authoritative identity provider, judged as people, sealed as the runs of a derived source.

`identities` and `adapters/` read stored evidence into identities; `mapping` is the operator's
file of links and exceptions; `join` builds the people; `records` turns them into the derived
source's resources; `run` collects and seals them like any source; `report` answers
`annexa people`."""
