"""Checks over Google Cloud projects as Cloud Asset Inventory describes them. Each resource's
data holds the service's own REST resource under `resource`, and (for the kinds whose IAM
policy is read) that policy under `iamPolicy`."""
