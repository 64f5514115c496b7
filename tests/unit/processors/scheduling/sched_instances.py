"""Small instances the QUBO, sampler, QAOA and annealing tests share."""

from __future__ import annotations

from processors.scheduling.model import Instance

P33 = Instance.build(
    "p3x3",
    {
        "a": [{"m1": 3, "m2": 5, "m3": 4}],
        "b": [{"m1": 5, "m2": 4, "m3": 3}],
        "c": [{"m1": 4, "m2": 3, "m3": 5}],
    },
)
P43 = Instance.build(
    "p4x3",
    {
        "a": [{"m1": 3, "m2": 5, "m3": 4}],
        "b": [{"m1": 5, "m2": 4, "m3": 3}],
        "c": [{"m1": 4, "m2": 3, "m3": 5}],
        "d": [{"m1": 2, "m2": 2, "m3": 3}],
    },
)
P22 = Instance.build("p2x2", {"a": [{"m1": 3, "m2": 2}], "b": [{"m1": 2, "m2": 4}]})
JS22 = Instance.build("js2x2", {"j1": [{"m1": 2}, {"m2": 1}], "j2": [{"m2": 2}, {"m1": 1}]})
