"""The pipeline's queues and the worker roles that consume them.

Queue names are part of vsmmon's contract with operators (S3 and S5 consumers, routing of alerts),
so they live in the library; `workers/names.py` routes task names onto them.
"""

COLLECT = "vsm.collect"
STORE = "vsm.store"
ANALYSIS = "vsm.analysis"
HEALTH = "vsm.health"
ALERTS = "vsm.alerts"
S3_CONTROL = "vsm.s3.control"
S5_POLICY = "vsm.s5.policy"

ALL = (COLLECT, STORE, ANALYSIS, HEALTH, ALERTS, S3_CONTROL, S5_POLICY)

ROLES: dict[str, tuple[str, ...]] = {
    "collector": (COLLECT, STORE),  # the collection's path: collect, persist, aggregate
    "analysis": (ANALYSIS,),
    "health": (HEALTH,),
    "alerts": (ALERTS,),
    "s3": (S3_CONTROL,),
    "s5": (S5_POLICY,),
    "all": ALL,
}
"""`vsmmon worker --role ROLE` consumes these queues."""
