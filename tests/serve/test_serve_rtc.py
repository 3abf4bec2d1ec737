#!/usr/bin/env python3
"""Real-time chunking through `pi0 serve` and the openpi client flow (issue 16's acceptance):

- tiny π0 with LIBERO (delta actions) and tiny π0.5 with ALOHA (joint flips, gripper encoding):
  an observation carrying `rtc_prev_actions` = the previous chunk minus its first 2 actions and
  `rtc_inference_delay` = 3 gets a chunk whose first 3 actions are within 0.25x of the distance
  the same observation (same `noise`) gets without the fields;
- without the fields, and with `rtc_prev_actions: None`, the reply is today's, key for key;
- a bad field is an error naming it, and the same connection goes on serving.

    test_serve_rtc.py --pi0 build/pi0 --workdir DIR

The client is test_serve_protocol.py's re-implementation of openpi's WebsocketClientPolicy.
"""
import argparse
import os
import subprocess
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve_protocol as proto  # noqa: E402

PI0 = None
WORKDIR = None
H, A = 10, 32  # the tiny presets' chunk


def checkpoint(preset):
    ck = os.path.join(WORKDIR, preset)
    subprocess.run([PI0, "make-checkpoint", "--preset", preset, "--seed", "3", "--out", ck, "--force"],
                   check=True, stdout=subprocess.DEVNULL, timeout=120)
    return ck


def libero_obs(noise_seed):
    obs = proto.make_obs(1, noise=False)
    obs["noise"] = np.random.default_rng(noise_seed).standard_normal((H, A)).astype(np.float32)
    return obs


def aloha_obs(noise_seed):
    rng = np.random.default_rng(5)
    return {
        "images": {c: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for c in ("cam_high", "cam_left_wrist")},
        "state": rng.uniform(-0.5, 0.5, 14).astype(np.float32),
        "prompt": "fold the towel",
        "noise": np.random.default_rng(noise_seed).standard_normal((H, A)).astype(np.float32),
    }


def distance(chunk, remainder, d=3):
    return float(np.abs(chunk[:d] - remainder[:d]).mean())


class Rtc(unittest.TestCase):
    def check(self, preset, robot, make_obs):
        proto.SERVER = PI0
        proto.SERVER_ARGS = ["serve", "--checkpoint", checkpoint(preset), "--robot", robot]
        with proto.ServerProcess() as srv:
            async def go():
                c = await proto.Client().connect(srv.url)
                plain = await c.infer(make_obs(1))
                self.assertEqual(set(plain), {"actions", "policy_timing", "server_timing"})
                previous = (await c.infer(make_obs(2)))["actions"]
                remainder = previous[2:]
                guided = (await c.infer(dict(make_obs(1), rtc_prev_actions=remainder, rtc_inference_delay=3)))["actions"]
                dp, dg = distance(plain["actions"], remainder), distance(guided, remainder)
                print(f"{preset}/{robot}: mean |first 3 - remainder| guided {dg:.4g}, plain {dp:.4g} (ratio {dg / dp:.3f})")
                self.assertLessEqual(dg, 0.25 * dp)
                # None: the first chunk of a control loop; a numpy int and another schedule work too.
                none = await c.infer(dict(make_obs(1), rtc_prev_actions=None, rtc_inference_delay=3))
                np.testing.assert_array_equal(none["actions"], plain["actions"])
                exp = await c.infer(dict(make_obs(1), rtc_prev_actions=remainder.astype(np.float32),
                                         rtc_inference_delay=np.int64(3), rtc_schedule="EXP", rtc_execution_horizon=5,
                                         rtc_max_guidance_weight=5.0))
                self.assertLessEqual(distance(exp["actions"], remainder), 0.25 * dp)
                # Bad fields: an error naming the field; the connection goes on serving.
                width = remainder.shape[1]
                bad = [
                    ({"rtc_prev_actions": remainder[:, :-1], "rtc_inference_delay": 3}, "rtc_prev_actions"),
                    ({"rtc_prev_actions": np.full((4, width), np.nan), "rtc_inference_delay": 3}, "rtc_prev_actions[0][0]"),
                    ({"rtc_prev_actions": remainder, "rtc_inference_delay": -1}, "rtc_inference_delay"),
                    ({"rtc_prev_actions": remainder[:2], "rtc_inference_delay": 3}, "rtc_inference_delay"),
                    ({"rtc_prev_actions": remainder, "rtc_inference_delay": 3, "rtc_schedule": "cosine"}, "rtc_schedule"),
                    ({"rtc_inference_delay": 3}, "rtc_prev_actions"),
                ]
                for fields, name in bad:
                    with self.assertRaises(proto.ServerError) as err:
                        await c.infer(dict(make_obs(1), **fields))
                    self.assertIn(f"field '{name}'", str(err.exception))
                again = await c.infer(make_obs(1))
                np.testing.assert_array_equal(again["actions"], plain["actions"])
                await c.close()
            proto.run(go())

    def test_pi0_libero(self):
        self.check("tiny-pi0", "libero", libero_obs)

    def test_pi05_aloha(self):
        self.check("tiny-pi05", "aloha", aloha_obs)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--pi0", required=True)
    ap.add_argument("--workdir", required=True)
    args, rest = ap.parse_known_args()
    PI0 = os.path.abspath(args.pi0)
    WORKDIR = args.workdir
    os.makedirs(WORKDIR, exist_ok=True)
    unittest.main(argv=[sys.argv[0], "-v", *rest])
