"""The Python module pi0cpp (python/pi0cpp.cpp) on a tiny checkpoint.

Run by ctest (python_pi0cpp) as

    PYTHONPATH=build/python PI0_CLI=build/pi0 PI0_SOURCE_DIR=. PI0_TEST_WORKDIR=DIR python3 -m pytest tests/python

- the same observation and noise give the same actions through pi0cpp and through `pi0 serve`
  (the openpi client re-implemented in tests/serve/test_serve_protocol.py), rtol 1e-5;
- the GIL is released while infer runs: another Python thread makes progress, counted;
- two Python threads infer at once and each gets what it gets alone;
- bad input raises pi0cpp.Error with the message the CLI prints after "error: " (and the server
  after "request failed: ");
- the README's C++ and Python examples are the files that are built and run.
"""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pi0cpp

SOURCE = os.environ["PI0_SOURCE_DIR"]
PI0 = os.environ["PI0_CLI"]
sys.path.insert(0, os.path.join(SOURCE, "tests", "serve"))
import test_serve_protocol as proto  # noqa: E402


@pytest.fixture(scope="session")
def checkpoint():
    workdir = os.environ["PI0_TEST_WORKDIR"]
    os.makedirs(workdir, exist_ok=True)
    ck = os.path.join(workdir, "tiny_pi0")
    subprocess.run([PI0, "make-checkpoint", "--preset", "tiny-pi0", "--seed", "3", "--force", "--out", ck],
                   check=True, stdout=subprocess.DEVNULL, timeout=300)
    return ck


# Both sides compute in f32: `auto` measures the machine at each load, and two processes on a busy
# machine may settle on different types (bf16 and f32 differ by more than 1e-5).
@pytest.fixture(scope="session")
def policy(checkpoint):
    return pi0cpp.Policy(checkpoint, robot="libero", precision="f32")


def libero_obs(policy, seed, noise=True):
    rng = np.random.default_rng(seed)
    obs = {
        "observation/image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/state": rng.standard_normal(8).astype(np.float32),
        "prompt": "pick up the fork",
    }
    if noise:
        info = policy.info
        obs["noise"] = rng.standard_normal((info["action_horizon"], info["model_action_dim"])).astype(np.float32)
    return obs


def serve_reply(checkpoint, robot, obs, *args):
    """What `pi0 serve` answers to openpi's client for `obs` (a str reply raises proto.ServerError)."""
    proto.SERVER = PI0
    proto.SERVER_ARGS = ["serve", "--checkpoint", checkpoint, "--robot", robot, "--quiet", *args]
    with proto.ServerProcess() as srv:
        async def go():
            c = await proto.Client().connect(srv.url)
            try:
                return c.metadata, await c.infer(obs)
            finally:
                await c.close()
        return proto.run(go())


def test_same_actions_as_pi0_serve(checkpoint, policy):
    obs = libero_obs(policy, 1)
    metadata, served = serve_reply(checkpoint, "libero", obs, "--precision", "f32")
    mine = policy.infer(obs)
    assert mine["actions"].dtype == np.float64
    assert mine["actions"].shape == served["actions"].shape == (policy.info["action_horizon"], 7)
    np.testing.assert_allclose(mine["actions"], served["actions"], rtol=1e-5, atol=0)
    assert np.isfinite(mine["actions"]).all()
    assert mine["policy_timing"]["infer_ms"] > 0
    assert policy.metadata == metadata == {}


def test_default_options_same_actions_as_pi0_serve(checkpoint):
    """The acceptance check as written: pi0cpp.Policy(ck, robot="libero") with every default. `auto`
    measures the machine at load, so the server is told the precision this load settled on."""
    policy = pi0cpp.Policy(checkpoint, robot="libero")
    assert policy.info["precision"] in ("bf16", "f32"), policy.info
    obs = libero_obs(policy, 9)
    _, served = serve_reply(checkpoint, "libero", obs, "--precision", policy.info["precision"])
    np.testing.assert_allclose(policy.infer(obs)["actions"], served["actions"], rtol=1e-5, atol=0)


def test_image_layouts_and_prompt_bytes_give_the_same_actions(policy):
    obs = libero_obs(policy, 2)
    want = policy.infer(obs)["actions"]
    chw = dict(obs)
    for k in ("observation/image", "observation/wrist_image"):
        chw[k] = np.ascontiguousarray(obs[k].transpose(2, 0, 1))  # CHW, viewed without a copy
    np.testing.assert_array_equal(policy.infer(chw)["actions"], want)
    strided = dict(obs)
    for k in ("observation/image", "observation/wrist_image"):
        strided[k] = obs[k].transpose(2, 0, 1)  # CHW through strides: copied to C order first
    np.testing.assert_array_equal(policy.infer(strided)["actions"], want)
    as_bytes = dict(obs, prompt=obs["prompt"].encode())
    as_f64 = dict(obs, noise=obs["noise"].astype(np.float64), **{"observation/state": obs["observation/state"].astype(np.float64)})
    np.testing.assert_array_equal(policy.infer(as_bytes)["actions"], want)
    scalars = dict(obs, **{"observation/state": list(obs["observation/state"])})  # numpy scalars in a list
    np.testing.assert_array_equal(policy.infer(scalars)["actions"], want)
    np.testing.assert_array_equal(policy.infer(as_f64)["actions"], want)


def test_seed_and_noise_make_actions_reproducible(policy):
    obs = libero_obs(policy, 3, noise=False)
    a = policy.infer(obs, seed=7)["actions"]
    np.testing.assert_array_equal(policy.infer(obs, seed=7)["actions"], a)
    assert not np.array_equal(policy.infer(obs, seed=8)["actions"], a)


def test_real_time_chunking_fields_as_the_server_reads_them(checkpoint, policy):
    """The rtc_* observation fields work from Python as over the wire: same guided actions as
    `pi0 serve`, None is no guidance, a bad field raises naming it."""
    plain = policy.infer(libero_obs(policy, 4))["actions"]
    remainder = policy.infer(libero_obs(policy, 5))["actions"][2:]
    obs = dict(libero_obs(policy, 4), rtc_prev_actions=remainder, rtc_inference_delay=np.int64(3))
    guided = policy.infer(obs)["actions"]
    _, served = serve_reply(checkpoint, "libero", obs, "--precision", "f32")
    np.testing.assert_allclose(guided, served["actions"], rtol=1e-5, atol=0)
    assert np.abs(guided[:3] - remainder[:3]).mean() <= 0.25 * np.abs(plain[:3] - remainder[:3]).mean()
    as_lists = dict(obs, rtc_prev_actions=remainder.tolist(), rtc_inference_delay=3)
    np.testing.assert_array_equal(policy.infer(as_lists)["actions"], guided)
    np.testing.assert_array_equal(policy.infer(dict(libero_obs(policy, 4), rtc_prev_actions=None))["actions"], plain)
    with pytest.raises(pi0cpp.Error, match="rtc_schedule"):
        policy.infer(dict(obs, rtc_schedule="cosine"))


def test_gil_released_during_infer(policy):
    """A counting thread runs while the main thread is inside infer.

    With a switch interval of 60 s the interpreter never takes the GIL from the main thread in
    this test; the counter thread gives it up at each time.sleep(0). So between reading `before`
    and `after` the counter moves only if infer itself lets go of the GIL.
    """
    obs = libero_obs(policy, 4)
    counter = 0
    stop = False

    def count():
        nonlocal counter
        while not stop:
            counter += 1
            time.sleep(0)  # releases the GIL, so the main thread can take it back

    old = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    t = threading.Thread(target=count)
    t.start()
    progress = []
    try:
        while counter == 0:
            time.sleep(0.001)
        for _ in range(3):
            before = counter
            policy.infer(obs)
            progress.append(counter - before)
    finally:
        stop = True
        t.join(60)
        sys.setswitchinterval(old)
    print("counter progress during each infer:", progress)
    assert sum(progress) > 0, progress


def test_two_threads_infer_at_once(policy):
    observations = [libero_obs(policy, 10 + i) for i in range(2)]
    alone = [policy.infer(o)["actions"] for o in observations]
    results = [None, None]
    errors = []
    start = threading.Barrier(2)

    def work(i):
        try:
            start.wait(30)
            for _ in range(3):
                r = policy.infer(observations[i])["actions"]
                np.testing.assert_array_equal(r, alone[i])
            results[i] = r
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert all(r is not None for r in results)


def test_bad_observation_message_is_the_servers(checkpoint, policy):
    obs = libero_obs(policy, 5)
    del obs["observation/state"]
    with pytest.raises(pi0cpp.Error) as mine:
        policy.infer(obs)
    assert isinstance(mine.value, ValueError)
    assert "observation/state" in str(mine.value)
    with pytest.raises(proto.ServerError) as served:
        serve_reply(checkpoint, "libero", obs, "--precision", "f32")
    assert str(served.value) == "request failed: " + str(mine.value)


def test_bad_load_message_is_the_clis(checkpoint):
    with pytest.raises(pi0cpp.Error) as mine:
        pi0cpp.Policy(checkpoint, robot="libero", norm_stats="/nonexistent/norm_stats.json")
    cli = subprocess.run([PI0, "infer", "--checkpoint", checkpoint, "--robot", "libero", "--norm-stats",
                          "/nonexistent/norm_stats.json", "--state", "0,0,0,0,0,0,0,0"],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 1
    assert cli.stderr.strip().splitlines()[-1] == "error: " + str(mine.value)
    with pytest.raises(pi0cpp.Error, match="precision"):
        pi0cpp.Policy(checkpoint, robot="libero", precision="fp8")


def test_unsupported_python_values_name_the_key(policy):
    obs = libero_obs(policy, 6)
    obs["observation/state"] = object()
    with pytest.raises(pi0cpp.Error, match="observation/state"):
        policy.infer(obs)


def test_metadata_and_info(checkpoint):
    aloha = pi0cpp.Policy(checkpoint, robot="aloha", precision="f32")
    assert aloha.metadata == {"reset_pose": [0, -1.5, 1.5, 0, 0, 0]}
    info = aloha.info
    assert info["robot"] == "aloha" and info["variant"] == "pi0" and info["precision"] == "f32"
    assert info["action_dim"] == 14
    assert {"key": "images/cam_high", "required": True} in info["cameras"]
    assert sum(s["size"] for s in info["state"]) == 14


def readme():
    with open(os.path.join(SOURCE, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_readme_examples_are_the_tested_files(checkpoint):
    text = readme()
    for rel in ("examples/embed/minimal.cpp", "examples/python/infer.py"):
        with open(os.path.join(SOURCE, rel), encoding="utf-8") as f:
            assert f.read() in text, f"README.md does not show {rel} as it is"
    run = subprocess.run([sys.executable, os.path.join(SOURCE, "examples/python/infer.py"), checkpoint],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("(10, 7) {'infer_ms': "), run.stdout
