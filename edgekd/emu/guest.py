"""Runs INSIDE the emulated aarch64 Python (3.11, numpy + the runtime only; edgekd is not installed there).

    qemu-aarch64 -L VIEW -cpu CORE -plugin libedgekd_insn.so,out=COUNTS python3.11 guest.py SPEC.json

SPEC.json: {"threads": n, "runs": steady-state inferences per model, "warmup": uncounted inferences before them,
"kernels": "default" | "builtin" (LiteRT without its default XNNPACK delegate), "models": [{"model": path, "runtime":
"onnxruntime" | "litert", "feeds": feeds.npy (N, *input shape, in the model's own dtype and layout), "out":
directory}, ...]}. For each model, in order: writes ``outputs.npy`` (its first output for every feed, raw: int8
stays int8) and ``stats.json`` into its ``out``, and marks with getpriority(PRIO_PROCESS, magic) its first
inference and, after a few unmarked warm-up ones, each of ``runs`` steady-state inferences of feed 0, so the TCG plugin records ``runs + 1`` windows
per model. One process serves many models: Python and the runtimes start once (seconds under emulation).
"""

import gc
import json
import os
import sys
import time

MARK_BEGIN, MARK_END = 0x45444B31, 0x45444B32
WARMUP = 3  # unmarked inferences between the first (counted) one and the steady-state ones


def mark(value):
    try:
        os.getpriority(os.PRIO_PROCESS, value)
    except OSError:  # ESRCH: expected, only the call matters
        pass


def status_kb(field):
    """A field of /proc/self/status in kB (under qemu-user this is the emulator process's own accounting)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def onnxruntime_runner(model, threads, kernels="default"):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle pool threads would spin and add instructions that depend on host timing, not on the model
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    info = {"runtime_version": ort.__version__}
    return (lambda feed: sess.run([out], {name: feed})[0]), info


def litert_runner(model, threads, kernels="default"):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if kernels == "builtin" else OpResolverType.AUTO
    interp = Interpreter(model_path=model, num_threads=threads, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def run(feed):
        interp.set_tensor(inp["index"], feed)
        interp.invoke()
        return interp.get_tensor(out["index"])

    try:
        from importlib.metadata import version

        v = version("ai-edge-litert")
    except Exception:
        v = "unknown"
    return run, {"runtime_version": v}


def run_model(item, threads, runs, np, warmup=WARMUP, kernels="default"):
    rss_before = status_kb("VmRSS")
    runner = onnxruntime_runner if item["runtime"] == "onnxruntime" else litert_runner
    feeds = np.load(item["feeds"])
    t1 = time.perf_counter()
    run, info = runner(item["model"], threads, kernels)
    mark(MARK_BEGIN)
    first = run(feeds[0])
    mark(MARK_END)
    t2 = time.perf_counter()
    outputs = [np.array(first)]
    for feed in feeds[1:]:
        outputs.append(np.array(run(feed)))
    for _ in range(warmup):  # Python 3.11 specialises bytecode and the allocator warms up over the first calls
        run(feeds[0])
    t3 = time.perf_counter()
    for _ in range(runs):
        mark(MARK_BEGIN)
        run(feeds[0])
        mark(MARK_END)
    t4 = time.perf_counter()
    np.save(os.path.join(item["out"], "outputs.npy"), np.stack(outputs))
    stats = dict(info, rss_before_model_kb=rss_before, rss_after_kb=status_kb("VmRSS"), hwm_kb=status_kb("VmHWM"),
                 load_and_first_s=t2 - t1, parity_runs_s=t3 - t2, steady_runs_s=t4 - t3,
                 python=sys.version.split()[0], machine=os.uname().machine)
    with open(os.path.join(item["out"], "stats.json"), "w") as f:
        json.dump(stats, f)


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    import numpy as np

    gc.collect()
    gc.disable()  # a collection inside a counted window would add instructions that are not the model's
    for item in spec["models"]:
        run_model(item, spec["threads"], spec["runs"], np, spec.get("warmup", WARMUP), spec.get("kernels", "default"))
        gc.collect()


if __name__ == "__main__":
    main(sys.argv[1])
