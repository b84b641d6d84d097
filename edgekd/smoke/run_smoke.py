#!/usr/bin/env python3
"""edgekd on-device smoke test: run THIS folder's model on this device and say PASS or FAIL.

    python3 run_smoke.py [BUNDLE_DIR] [--strict] [--runs N] [--threads N] [--emulated]

Needs only Python 3.9+, numpy and one runtime: ai_edge_litert, tflite_runtime or tensorflow (for .tflite),
onnxruntime (for .onnx); for a bundle with raw images, Pillow (without it the stored inputs are fed, and said).
With raw images, the inputs are made here from them by the bundle's input contract (image_io.py). Checks, in order: the manifest (sha256 of every file), that the model loads, that every
sample's output matches the reference within the bundle's tolerance and gives the same label, and times warm
inferences (p50/p90) against the target's p90 budget (a warning unless --strict). Prints one PASS or FAIL line
with the reasons, writes result.json next to this file, and exits 0 on PASS, 1 on FAIL.
"""
import argparse
import hashlib
import json
import os
import platform
import sys
import time


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


RESULT_MARK = "=== edgekd result.json ==="
REQUIRED_FILES = ("inputs.npy", "reference_outputs.npy", "expected.json")
HEX = frozenset("0123456789abcdef")


def plain_name(name):
    """A file directly in the bundle folder: no directory part, nothing like '..' or an absolute path."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def check_manifest(manifest):
    """What is wrong with the manifest itself (sentences); [] when it can be trusted to check the bundle."""
    if not isinstance(manifest, dict):
        return ["manifest: manifest.json holds a JSON %s, not an object" % type(manifest).__name__]
    files, model = manifest.get("files"), manifest.get("model")
    if not isinstance(files, dict) or not files:
        return ["manifest: 'files' (each file's sha256) is missing or empty, so nothing can be checked"]
    problems = []
    for name, digest in sorted(files.items(), key=lambda kv: str(kv[0])):
        if not plain_name(name):
            problems.append("integrity: manifest names a file outside the bundle: %r" % (name,))
        elif not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= HEX):
            problems.append("manifest: the sha256 recorded for %s is malformed" % name)
    if not (plain_name(model) and model.endswith((".onnx", ".tflite")) and model in files):
        problems.append("manifest: 'model' must name the bundle's .onnx or .tflite file listed in 'files', got %r"
                        % (model,))
    problems += ["manifest: %s is not listed in 'files'" % name for name in REQUIRED_FILES if name not in files]
    threads = manifest.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024:
        problems.append("manifest: 'threads' must be an integer from 1 to 1024, got %r" % (threads,))
    budget = manifest.get("budget_p90_ms")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0
                               or budget == float("inf")):
        problems.append("manifest: 'budget_p90_ms' must be a positive number or null, got %r" % (budget,))
    return problems


def verify(bundle, manifest):
    problems = check_manifest(manifest)
    if problems:
        return problems
    for name, digest in sorted(manifest["files"].items()):
        path = os.path.join(bundle, name)
        if not os.path.isfile(path):
            problems.append("integrity: %s is missing" % name)
        elif sha256(path) != digest:
            problems.append("integrity: %s has changed (sha256 differs from the manifest)" % name)
    return problems


def load_tflite(path, threads):
    errors = []
    for module, attr in (("ai_edge_litert.interpreter", "Interpreter"), ("tflite_runtime.interpreter", "Interpreter"),
                         ("tensorflow.lite", "Interpreter")):
        try:
            mod = __import__(module, fromlist=[attr])
            cls = getattr(mod, attr)
        except Exception as e:  # not installed (ImportError) or broken: try the next one
            errors.append("%s: %s" % (module, type(e).__name__))
            continue
        interp = cls(model_path=path, num_threads=threads)
        interp.allocate_tensors()
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

        def run(feed, interp=interp, inp=inp, out=out):
            interp.set_tensor(inp["index"], feed)
            interp.invoke()
            return interp.get_tensor(out["index"])

        return run, module.split(".")[0]
    raise RuntimeError("no TFLite runtime found (tried %s): install one, e.g. `pip install ai-edge-litert` "
                       "(or tflite-runtime)" % ", ".join(errors))


def load_onnx(path, threads):
    try:
        import onnxruntime as ort
    except Exception as e:
        raise RuntimeError("no ONNX runtime found (onnxruntime: %s): install it, e.g. `pip install onnxruntime`"
                           % type(e).__name__)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # exact int8 kernels on x86 CPUs without VNNI (no effect elsewhere), as the bundle's reference outputs used
    opts.add_session_config_entry("session.x64quantprecision", "1")
    sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    return (lambda feed: sess.run([out], {name: feed})[0]), "onnxruntime " + ort.__version__


def feeds_from_images(np, bundle, manifest, stored, result):
    """The model's feeds made here from the bundle's raw images by its input contract (image_io.py: decode,
    resize, crop, normalise), then laid out and quantized as the model takes them; the stored inputs when this
    device has no Pillow (said in the result)."""
    try:
        sys.path.insert(0, bundle)
        import image_io
    except ImportError as e:  # Pillow is imported inside image_io.decode; this is numpy or the file itself
        result["warnings"].append("raw images not used (%s); fed the stored inputs" % e)
        return stored
    pre, spec = manifest["preprocess"], manifest["feed"]
    try:
        pixels = np.stack([image_io.decode(os.path.join(bundle, name), pre["size"], pre["channels"])
                           for name in manifest["images"]])
    except ImportError:
        result["warnings"].append("raw images not used (no Pillow on this device: pip install pillow); "
                                  "fed the stored inputs")
        return stored
    x = image_io.to_input(pixels, pre["mean"], pre["std"], pre["order"], pre["layout"])
    if spec["layout"] == "NHWC" and pre["layout"] == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    dtype = np.dtype(spec["dtype"])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        x = np.clip(np.round(x / spec["scale"] + spec["zero_point"]), info.min, info.max)
    feeds = x.astype(dtype)[:, None]
    result["inputs"] = "made on this device from %d raw images (%s)" % (len(feeds), ", ".join(manifest["images"][:3]))
    result["input_max_difference"] = float(np.abs(feeds.astype(np.float64) - stored.astype(np.float64)).max())
    return feeds


def compare(np, expected, got, tol):
    """(max difference, passed) for one sample's output, per the bundle's tolerance rule."""
    if tol["kind"] == "steps":
        diff = float(np.abs(expected.astype(np.int64) - got.astype(np.int64)).max())
        return diff, diff <= tol["max_steps"]
    diff = float(np.abs(expected.astype(np.float64) - got.astype(np.float64)).max())
    limit = tol["atol"] + tol["rtol"] * float(np.abs(expected).max())
    return diff, diff <= limit


def rss_mb(field="VmRSS"):
    """A memory figure of this process from /proc/self/status in MB (None where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def describe_board():
    """What this device is: the CPU (from /proc/cpuinfo), its clock, memory, OS and the runtimes installed."""
    info = {"machine": platform.machine(), "system": platform.platform(), "python": platform.python_version()}
    parts, names = set(), []
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "CPU part":
            parts.add(value.lower())
        elif key in ("model name", "Model", "Hardware") and value not in names:
            names.append(value)
    info["cpu_parts"] = sorted(parts)
    info["cpu"] = "; ".join(names)
    info["cpus"] = os.cpu_count()
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    info["max_clock_ghz"] = int(khz) / 1e6 if khz.isdigit() else None
    mem = [ln for ln in _read("/proc/meminfo").splitlines() if ln.startswith("MemTotal:")]
    info["memory_mb"] = int(mem[0].split()[1]) // 1024 if mem else None
    versions = {}
    for mod in ("numpy", "ai_edge_litert", "tflite_runtime", "tensorflow", "onnxruntime"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            try:
                from importlib.metadata import version

                versions[mod] = version(mod.replace("_", "-"))
            except Exception:
                pass
    info["runtimes"] = versions
    return info


def percentile(values, q):
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main(argv=None):
    ap = argparse.ArgumentParser(description="edgekd on-device smoke test")
    ap.add_argument("bundle", nargs="?", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--strict", action="store_true", help="a p90 over the budget is a FAIL, not a warning")
    ap.add_argument("--runs", type=int, default=50, help="timed warm inferences")
    ap.add_argument("--threads", type=int, default=0, help="inference threads (default: the target's)")
    ap.add_argument("--emulated", action="store_true", help="running under emulation: times are not latencies")
    ap.add_argument("--describe", action="store_true", help="add the device's description (CPU, clock, runtimes)")
    ap.add_argument("--print-result", action="store_true", help="print result.json after the PASS/FAIL line")
    args = ap.parse_args(argv)
    bundle = os.path.abspath(args.bundle)
    result = {"status": "FAIL", "reasons": [], "warnings": [], "python": platform.python_version(),
              "machine": platform.machine()}
    if args.describe:
        try:
            result["board"] = describe_board()
        except Exception as e:  # a description is a courtesy: never the reason a smoke test fails
            result["warnings"].append("board description: %s" % e)
    try:
        status = run(bundle, args, result)
    except Exception as e:  # anything unexpected is a FAIL with its reason, never a traceback on the board
        result["reasons"].append("%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e) else ""))
        status = "FAIL"
    result["status"] = status
    with open(os.path.join(bundle, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    why = "; ".join(result["reasons"] + result["warnings"])
    print("%s: %s%s" % (status, result.get("summary", "smoke test"), (" — " + why) if why else ""))
    if args.print_result:
        print(RESULT_MARK)
        print(json.dumps(result))
    return 0 if status == "PASS" else 1


def run(bundle, args, result):
    try:
        with open(os.path.join(bundle, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:  # missing, unreadable, truncated or not JSON (ValueError: decode errors too)
        result["reasons"].append("manifest: manifest.json cannot be read as JSON (%s)" % str(e).splitlines()[0][:120])
        return "FAIL"
    problems = verify(bundle, manifest)
    if problems:
        result["reasons"] += problems
        return "FAIL"
    import numpy as np

    with open(os.path.join(bundle, "expected.json")) as f:
        expected = json.load(f)
    model = os.path.join(bundle, manifest["model"])
    threads = args.threads or int(manifest.get("threads", 1))
    feeds = np.load(os.path.join(bundle, "inputs.npy"))
    if manifest.get("images"):
        feeds = feeds_from_images(np, bundle, manifest, feeds, result)
    rss_before = rss_mb()
    t_load = time.perf_counter()
    try:
        infer, runtime = (load_onnx if model.endswith(".onnx") else load_tflite)(model, threads)
    except RuntimeError as e:
        result["reasons"].append("runtime missing: %s" % e)
        return "FAIL"
    infer(feeds[0])  # cold start: loading + the first inference
    result["cold_start_ms"] = (time.perf_counter() - t_load) * 1000.0
    result["runtime"] = runtime
    refs = np.load(os.path.join(bundle, "reference_outputs.npy"))
    tol, labels = expected["tolerance"], expected["reference_labels"]
    worst, mismatched, wrong_label = 0.0, [], []
    for i, feed in enumerate(feeds):
        got = np.asarray(infer(feed)).reshape(refs[i].shape)
        diff, ok = compare(np, refs[i], got, tol)
        worst = max(worst, diff)
        if not ok:
            mismatched.append(i)
        if int(np.argmax(got.reshape(-1))) != int(labels[i]):
            wrong_label.append(i)
    result.update(samples=len(feeds), max_difference=worst, tolerance=tol)
    if mismatched:
        result["reasons"].append("mismatch: %d of %d outputs differ from the reference by more than the tolerance "
                                 "(max difference %.4g, samples %s)" % (len(mismatched), len(feeds), worst,
                                                                        mismatched[:5]))
    if wrong_label:
        result["reasons"].append("labels: %d of %d samples get a different label than on the reference runtime "
                                 "(samples %s)" % (len(wrong_label), len(feeds), wrong_label[:5]))
    truth = expected.get("true_labels")
    if truth:
        result["true_label_accuracy"] = sum(int(np.argmax(np.asarray(infer(f)).reshape(-1))) == int(t)
                                            for f, t in zip(feeds, truth)) / float(len(feeds))
    for _ in range(5):
        infer(feeds[0])
    times = []
    for _ in range(max(1, args.runs)):
        t0 = time.perf_counter()
        infer(feeds[0])
        times.append((time.perf_counter() - t0) * 1000.0)
    p50, p90 = percentile(times, 50), percentile(times, 90)
    result.update(p50_ms=p50, p90_ms=p90, p99_ms=percentile(times, 99), mean_ms=sum(times) / len(times),
                  runs=len(times), threads=threads)
    peak = rss_mb("VmHWM")
    result.update(peak_rss_mb=peak, rss_before_model_mb=rss_before,
                  model_memory_mb=(peak - rss_before) if peak is not None and rss_before is not None else None)
    budget = manifest.get("budget_p90_ms")
    if args.emulated:
        result["warnings"].append("timed under emulation: p90 %.3g ms is not the device's latency" % p90)
    elif budget is not None and p90 > budget:
        note = "budget: p90 %.3g ms over the %s budget of %g ms" % (p90, manifest.get("target", "target"), budget)
        (result["reasons"] if args.strict else result["warnings"]).append(note)
    result["summary"] = "%s on %s with %s: %d samples, max difference %.3g, p50 %.3g ms, p90 %.3g ms" % (
        manifest["model"], platform.machine(), runtime, len(feeds), worst, p50, p90)
    return "FAIL" if result["reasons"] else "PASS"


if __name__ == "__main__":
    sys.exit(main())
