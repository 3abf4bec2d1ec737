#!/usr/bin/env python3
"""`pi0 serve` on a real tiny π0.5 checkpoint, where openpi's own server behaves in a way the
fake-policy protocol tests cannot show:

- a checkpoint converted by openpi has no `discrete_state_input` in config.json; the robot preset
  decides the prompt format as openpi's train config does, and the server says so at load;
- `"prompt": None` is an error naming `prompt` (openpi fills the default only for an absent key);
- an ALOHA observation with four 720x1280x3 uint8 cameras (11 MB) is served with default options
  (openpi serves with max_size=None).

    test_serve_parity.py --pi0 build/pi0 --workdir DIR

DIR receives the checkpoint (`pi0 make-checkpoint --preset tiny-pi05`, then the field removed).
The client is test_serve_protocol.py's re-implementation of openpi's.
"""
import argparse
import json
import os
import subprocess
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve_protocol as proto  # noqa: E402

PI0 = None
CHECKPOINT = None


def make_checkpoint(workdir):
    """tiny-pi05 with config.json as openpi's JAX->PyTorch conversion writes it: no discrete_state_input."""
    ck = os.path.join(workdir, "tiny_pi05_unstated")
    subprocess.run([PI0, "make-checkpoint", "--preset", "tiny-pi05", "--seed", "3", "--out", ck, "--force"],
                   check=True, stdout=subprocess.DEVNULL, timeout=120)
    path = os.path.join(ck, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    assert "discrete_state_input" in cfg and "discrete_state_input" in cfg["architecture"], cfg
    del cfg["discrete_state_input"]
    del cfg["architecture"]["discrete_state_input"]
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return ck


def serve(robot, *args):
    """`pi0 serve` with default options (only host and port are set, by ServerProcess)."""
    proto.SERVER = PI0
    proto.SERVER_ARGS = ["serve", "--checkpoint", CHECKPOINT, "--robot", robot, *args]
    return proto.ServerProcess()


def aloha_hd_obs(prompt="fold the towel"):
    rng = np.random.default_rng(0)
    cams = ("cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist")
    return {
        "images": {c: rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for c in cams},
        "state": rng.uniform(-0.5, 0.5, 14).astype(np.float32),
        "prompt": prompt,
    }


class Parity(unittest.TestCase):
    def test_aloha_hd_cameras_served_and_none_prompt_refused(self):
        with serve("aloha") as srv:
            async def go():
                c = await proto.Client().connect(srv.url)
                self.assertEqual(c.metadata["reset_pose"], [0, -1.5, 1.5, 0, 0, 0])
                obs = aloha_hd_obs()
                self.assertGreater(len(proto.packb(obs)), 11_000_000)  # over the old 4 MiB default
                r = await c.infer(obs)
                self.assertEqual(r["actions"].shape[1], 14)
                self.assertTrue(np.isfinite(r["actions"]).all())
                obs["prompt"] = None
                await c.ws.send(proto.packb(obs))
                with self.assertRaises(proto.ServerError) as err:
                    await c.reply()
                self.assertIn("field 'prompt'", str(err.exception))
                self.assertIn("None", str(err.exception))
                self.assertEqual(await c.close_code(), 1011)
                # The refusal closes that connection only: the next client is served.
                c = await proto.Client().connect(srv.url)
                await c.infer(aloha_hd_obs("pick up the cube"))
                await c.close()
            proto.run(go())
            log = srv.stderr()
        # pi05_aloha: Pi0Config(pi05=True), whose discrete_state_input defaults to True.
        self.assertIn("prompt format: pi0.5 with the state in the prompt", log)
        self.assertIn("from robot preset aloha (openpi's pi05_aloha)", log)

    def load_line(self, *args):
        with serve(*args) as srv:
            # Answering a health check means run() has started, with the SIGTERM handler that a
            # clean exit needs; the load line was printed before "listening".
            self.assertTrue(proto.http_get(srv.port, "/healthz").startswith(b"HTTP/1.1 200 OK"))
            return srv.stderr()

    def test_libero_load_line_and_flag(self):
        log = self.load_line("libero")
        self.assertIn("prompt format: pi0.5 without the state in the prompt", log)
        self.assertIn("from robot preset libero (openpi's pi05_libero)", log)
        log = self.load_line("libero", "--discrete-state-input", "true")
        self.assertIn("prompt format: pi0.5 with the state in the prompt", log)
        self.assertIn("from --discrete-state-input true; overrides robot preset libero", log)


def main():
    global PI0, CHECKPOINT
    ap = argparse.ArgumentParser()
    ap.add_argument("--pi0", required=True)
    ap.add_argument("--workdir", required=True)
    args, rest = ap.parse_known_args()
    PI0 = args.pi0
    os.makedirs(args.workdir, exist_ok=True)
    CHECKPOINT = make_checkpoint(args.workdir)
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
