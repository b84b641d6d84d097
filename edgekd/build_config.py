"""What ``edgekd build`` is asked to do: a typed, frozen configuration, validated on construction (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .data.folder import ImageOptions
from .distill.config import DistillConfig
from .errors import ConfigError

# The default build (issue 19: <= 5 minutes on a 2-core CPU, cold): 2 epochs, the 2 candidates whose estimated
# training fits 90 s together, students of the teacher's depth pruned from it first (benchmarks/build_time.py and
# benchmarks/seeded_students.py in benchmarks/RESULTS.md measured these settings)
DEFAULT_MAX_CANDIDATES = 2
DEFAULT_EPOCHS = 2
DEFAULT_TIME_BUDGET_S = 90.0


@dataclass(frozen=True)
class BuildConfig:
    """Everything ``edgekd build`` needs; validated on construction."""

    target: str = "raspberrypi"
    data: str = "fashion-mnist"  # a data spec (see edgekd.data)
    teacher: str | None = None  # teacher file; None = the built-in default teacher
    teacher_arch: str | None = None  # module:factory for a state_dict teacher
    teacher_outputs: str = "auto"  # "auto", "logits" or "probs"
    teacher_input: str | None = None  # the teacher's input contract (--teacher-input, see edgekd.preprocess)
    images: ImageOptions = field(default_factory=ImageOptions)  # folder: data: size, channels, unreadable files
    trust_pickle: bool = False  # DANGEROUS: unpickle a torch teacher in full (runs any code it holds)
    out_dir: str | None = None  # default: runs/<target>
    targets_dir: str | None = None
    cache_dir: str | None = None  # default: ~/.cache/edgekd
    distill: DistillConfig = field(default_factory=lambda: DistillConfig(epochs=DEFAULT_EPOCHS))
    family: str | None = None  # student family; default chosen from the data's shape
    sizes: tuple[tuple[float, int], ...] | None = None  # (width, depth) candidates; default: the family ladder
    resolutions: tuple[int, ...] | None = None  # input sizes to try (image folders); default: --image-size only
    data_limit: int | None = None  # keep at most this many training samples (quick runs)
    unlabeled: str | None = None  # unlabelled training inputs: "rest" (what data_limit left out) or a data spec
    bench_runs: int = 200
    bench_warmup: int = 20
    int8_search: bool = True  # try several int8 schemes, keep the best on validation (else MinMax per-channel)
    strict: bool = False  # a quantization-guard finding on the chosen student is an error (exit 3)
    fresh: bool = False  # ignore cached stages of earlier builds (they are resumed / reused otherwise)
    retime: bool = False  # measure the candidates' training steps again (otherwise read back per machine)
    max_candidates: int | None = None  # train at most this many that can fit (None: DEFAULT_MAX_CANDIDATES of the
    # default ladder, every size given with --size)
    # drop the costliest candidates while their estimated training exceeds it (seeded students are kept first)
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S
    search: bool = True  # estimate every candidate's cost before training and skip those that cannot fit
    board: str | None = None  # ssh://user@host[:port]: judge the artifacts by measuring them on this board
    jobs: int = 1  # train the candidates in this many worker processes (parallel_train)
    ray: str | None = None  # "auto" or a Ray cluster's address: train the candidates as Ray tasks
    command: str = ""  # the command line that started the build, for the report

    def __post_init__(self) -> None:
        if self.sizes is not None and len(self.sizes) < 1:
            raise ConfigError("no student sizes given", "pass at least one --size WIDTHxDEPTH")
        if self.bench_runs < 1 or self.bench_warmup < 0:
            raise ConfigError("bench runs must be >= 1 and warm-up >= 0", "use e.g. --bench-runs 200")
        if self.max_candidates is not None and self.max_candidates < 1:
            raise ConfigError(f"--max-candidates {self.max_candidates} is below 1", "train at least one candidate")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ConfigError(f"--time-budget {self.time_budget_s} is not a positive number of seconds",
                              "pass e.g. --time-budget 600, or leave it out")
        if self.resolutions is not None and (not self.resolutions or any(not 8 <= r <= 4096 for r in self.resolutions)):
            raise ConfigError(f"--resolution {self.resolutions} is not a list of sizes in 8..4096 px",
                              "pass e.g. --resolution 96 --resolution 128")
        if self.jobs < 1:
            raise ConfigError(f"--jobs {self.jobs} is below 1", "pass --jobs 1 (serial) or more")
        if self.ray is not None and self.jobs > 1:
            raise ConfigError("--jobs and --ray both say where to train", "pass one of them (Ray decides how many "
                              "tasks run at once)")
        if self.ray is not None and not self.ray.strip():
            raise ConfigError("--ray is empty", "pass --ray auto or a cluster address, e.g. --ray 10.0.0.5:6379")
        if self.data_limit is not None and self.data_limit < 10:
            raise ConfigError(f"--limit {self.data_limit} is too small", "keep at least 10 training samples")
