"""python3 examples/python/infer.py CHECKPOINT: one LIBERO observation through pi0cpp (PYTHONPATH=build/python)."""
import sys

import numpy as np
import pi0cpp

policy = pi0cpp.Policy(sys.argv[1], robot="libero")
obs = {
    "observation/image": np.zeros((224, 224, 3), dtype=np.uint8),        # HWC or CHW uint8
    "observation/wrist_image": np.zeros((224, 224, 3), dtype=np.uint8),
    "observation/state": np.zeros(8, dtype=np.float32),
    "prompt": "pick up the black bowl",
}
reply = policy.infer(obs)  # openpi's BasePolicy.infer; the GIL is released while it runs
print(reply["actions"].shape, reply["policy_timing"])  # float64 [H, 7]
