"""WorkSet: a Placement's decided clusters each get a Work with the WorkSet's manifests (after per-cluster
overrides), rolled out at most `maxUnavailable` clusters at a time, with their status summed up on the WorkSet.
"""
