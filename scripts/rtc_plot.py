#!/usr/bin/env python3
"""What real-time chunking does to a robot's trajectory, through `pi0 serve` and an openpi client.

A simulated control loop runs one action per tick. Every EXECUTE ticks it sends an observation
(a fixed stream: the same images, state and prompt each time; fresh seeded noise per chunk) and
goes on executing the chunk in flight while the server computes; the answer arrives DELAY ticks
later, when the robot switches to the new chunk at index DELAY (the actions the new chunk planned
for the ticks already spent are skipped, as a real-time controller must). Without RTC each switch
jumps to an unrelated chunk; with RTC the request carries the not-yet-executed remainder
(`rtc_prev_actions`) and the delay (`rtc_inference_delay`), and the new chunk continues it.

Both runs use the same noise sequence (smooth along each chunk: see observation()). The executed trajectory of a few action dimensions goes
into a PNG, with the chunk switches marked, and the mean jump at a switch is printed for both.

    /usr/bin/python3 scripts/rtc_plot.py --pi0 build/pi0 --out docs/rtc.png

Without --checkpoint it makes the tiny demo checkpoint (random weights: the motion means nothing,
only its continuity does). The client is openpi's `openpi_client.websocket_client_policy` when it
is importable, else the re-implementation of its protocol in tests/serve/test_serve_protocol.py.
Needs Debian's python3-matplotlib.
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

WHITE_NOISE = False  # --white-noise
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "serve"))
import test_serve_protocol as proto  # noqa: E402


class ProtoClient:
    """test_serve_protocol's asyncio client behind openpi's blocking infer(obs)."""

    name = "the openpi protocol re-implementation in tests/serve/test_serve_protocol.py"

    def __init__(self, url):
        self.loop = asyncio.new_event_loop()
        self.client = self.loop.run_until_complete(proto.Client().connect(url))

    def infer(self, obs):
        return self.loop.run_until_complete(self.client.infer(obs))

    def close(self):
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


def connect(url, port):
    try:
        from openpi_client import websocket_client_policy  # noqa: PLC0415
    except ImportError:
        return ProtoClient(url)
    client = websocket_client_policy.WebsocketClientPolicy(host="127.0.0.1", port=port)
    client.name = "openpi_client.websocket_client_policy"
    client.close = lambda: None
    return client


def observation(robot, horizon, width, noise_seed):
    rng = np.random.default_rng(0)  # the fixed observation stream
    # Fresh noise per chunk, smooth along the chunk: a random-phase sinusoid per dimension. A
    # trained model turns white noise into smooth motion; the random-weight demo model's chunk
    # follows its noise, and white noise would make every tick jump (--white-noise shows that).
    nrng = np.random.default_rng(1000 + noise_seed)
    if WHITE_NOISE:
        noise = nrng.standard_normal((horizon, width))
    else:
        ticks = np.arange(horizon)[:, None]
        noise = np.sin(0.35 * ticks + nrng.uniform(0, 2 * np.pi, width)) + 0.5 * nrng.standard_normal(width)
    noise = noise.astype(np.float32)
    if robot == "libero":
        obs = {"observation/image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
               "observation/wrist_image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
               "observation/state": rng.uniform(-0.5, 0.5, 8).astype(np.float32)}
    elif robot in ("aloha", "aloha_sim"):
        obs = {"images": {"cam_high": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)},
               "state": rng.uniform(-0.5, 0.5, 14).astype(np.float32)}
    else:
        raise SystemExit(f"rtc_plot.py: robot {robot!r} has no observation here (libero, aloha, aloha_sim)")
    obs["prompt"] = "pick up the red block"
    obs["noise"] = noise
    return obs


def control_loop(client, robot, horizon, width, chunks, execute, delay, rtc, schedule):
    """Executed actions, one per tick, and the ticks at which a new chunk took over."""
    chunk = np.asarray(client.infer(observation(robot, horizon, width, 0))["actions"])
    executed, switches, index = [], [], 0
    for k in range(1, chunks + 1):
        # Chunk indices count ticks from the chunk's own request: the next request goes out at
        # index EXECUTE (the chunk took over at index DELAY, or at 0 for the first one).
        executed.extend(chunk[index:execute])
        index = execute
        obs = observation(robot, horizon, width, k)
        if rtc:
            obs["rtc_prev_actions"] = chunk[index:]
            obs["rtc_inference_delay"] = delay
            obs["rtc_schedule"] = schedule
        new = np.asarray(client.infer(obs)["actions"])
        executed.extend(chunk[index:index + delay])  # the old chunk runs on while the server computes
        switches.append(len(executed))
        chunk, index = new, delay
    executed.extend(chunk[index:execute])
    return np.array(executed), switches


def mean_jump(traj, switches):
    """Mean |a(t) − a(t−1)| at the switches, over the plotted dimensions."""
    return float(np.mean([np.abs(traj[s] - traj[s - 1]).mean() for s in switches]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pi0", default="build/pi0", help="the pi0 binary (default build/pi0)")
    ap.add_argument("--checkpoint", help="checkpoint directory (default: make the tiny-pi0 demo)")
    ap.add_argument("--robot", default="libero", help="libero, aloha or aloha_sim (default libero)")
    ap.add_argument("--chunks", type=int, default=8, help="chunk switches to simulate (default 8)")
    ap.add_argument("--execute", type=int, default=3, help="ticks between requests (default 3)")
    ap.add_argument("--delay", type=int, default=2, help="inference delay in ticks (default 2)")
    ap.add_argument("--schedule", default="LINEAR", help="rtc_schedule: ZEROS, ONES, LINEAR or EXP (default LINEAR)")
    ap.add_argument("--dims", default="0,1,2", help="action dimensions to plot (default 0,1,2)")
    ap.add_argument("--out", default="docs/rtc.png", help="the PNG to write (default docs/rtc.png)")
    ap.add_argument("--white-noise", action="store_true", help="i.i.d. normal noise instead of smooth noise")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless RTC at least halves the mean jump at a switch (CTest runs this)")
    args = ap.parse_args()
    global WHITE_NOISE
    WHITE_NOISE = args.white_noise

    import matplotlib  # noqa: PLC0415  (Debian python3-matplotlib; imported late so --help works without)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        ck = args.checkpoint
        if not ck:
            ck = os.path.join(tmp, "tiny-pi0")
            subprocess.run([args.pi0, "make-checkpoint", "--preset", "tiny-pi0", "--seed", "7", "--out", ck],
                           check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(ck, "config.json")) as f:
            cfg = json.load(f)  # openpi's keys, else LeRobot's
        horizon = int(cfg.get("action_horizon") or cfg["chunk_size"])
        width = int(cfg.get("action_dim") or cfg["max_action_dim"])
        if args.execute + args.delay > horizon:
            raise SystemExit(f"rtc_plot.py: --execute + --delay ({args.execute + args.delay}) exceeds the chunk ({horizon})")

        proto.SERVER = os.path.abspath(args.pi0)
        proto.SERVER_ARGS = ["serve", "--checkpoint", ck, "--robot", args.robot]
        with proto.ServerProcess() as srv:
            client = connect(srv.url, srv.port)
            print(f"rtc_plot: {args.robot} through {client.name}; chunk {horizon}, execute {args.execute}, "
                  f"delay {args.delay}")
            runs = {rtc: control_loop(client, args.robot, horizon, width, args.chunks, args.execute, args.delay, rtc,
                                      args.schedule)
                    for rtc in (False, True)}
            client.close()

    dims = [int(d) for d in args.dims.split(",")]
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True, sharey=True)
    for ax, rtc in zip(axes, (False, True)):
        traj, switches = runs[rtc]
        jump = mean_jump(traj[:, dims], switches)
        print(f"rtc_plot: {'with' if rtc else 'without'} RTC: mean jump at a switch {jump:.4f}")
        for d in dims:
            ax.plot(traj[:, d], marker=".", label=f"action[{d}]")
        for s in switches:
            ax.axvline(s - 0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{'with' if rtc else 'without'} real-time chunking (mean jump at a switch {jump:.3f})")
        ax.set_ylabel("executed action")
    axes[0].legend(loc="upper right", fontsize="small")
    axes[1].set_xlabel(f"control tick (dotted: a new chunk takes over, {args.delay} ticks after its request)")
    fig.suptitle(f"pi0 serve, {args.robot}: a request every {args.execute} ticks, inference delay {args.delay}")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"rtc_plot: wrote {args.out}")
    if args.check:
        jumps = {rtc: mean_jump(runs[rtc][0][:, dims], runs[rtc][1]) for rtc in (False, True)}
        if not jumps[True] <= 0.5 * jumps[False]:
            raise SystemExit(f"rtc_plot: RTC did not halve the jump at a switch ({jumps[True]:.4f} vs {jumps[False]:.4f})")


if __name__ == "__main__":
    main()
