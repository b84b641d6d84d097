/*
 * edgekd TCG plugin: count guest instructions and memory traffic per thread between markers.
 *
 * The guest marks a window with getpriority(PRIO_PROCESS, MARK_BEGIN) ... getpriority(PRIO_PROCESS, MARK_END)
 * (the calls fail with ESRCH on the host; only the arguments matter). Counted per vCPU (= guest thread):
 *   - instructions: every translated block adds its instruction count when it is entered (exact);
 *   - loads, stores and the bytes they move (every memory access the guest makes, as QEMU splits it);
 *   - a modelled last-level cache: each vCPU has its own set-associative, write-back, write-allocate cache of
 *     llc_kb KiB with `ways` ways and 64-byte lines and LRU replacement; a miss is a line read from DRAM, a dirty
 *     line evicted is a line written back. Private per thread so that the count does not depend on how the
 *     host interleaves the threads: with several threads it over-counts data they would share.
 * At each end marker the per-thread deltas since the begin marker are stored; at exit they are written as one
 * JSON object per line to the file named by the plugin argument out=PATH:
 *   {"window": 0, "total": N, "max_thread": M, "threads": {"0": n0, "3": n3}, "loads": L, "stores": S,
 *    "load_bytes": LB, "store_bytes": SB, "llc_misses": LM, "llc_writebacks": W, "llc_kb": K, "overflow": false}
 * Arguments: out=PATH (required), llc_kb=N (default 1024; 0 disables the cache model), ways=N (default 16).
 * Build: gcc -shared -fPIC -O2 -I DIR_WITH_qemu-plugin.h insn_count.c -o libedgekd_insn.so
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_VCPUS 1024
#define MAX_WINDOWS 4096
#define NR_GETPRIORITY_AARCH64 141
#define MARK_BEGIN 0x45444b31ULL /* "EDK1" */
#define MARK_END 0x45444b32ULL   /* "EDK2" */
#define LINE_SHIFT 6

enum { INSNS, LOADS, STORES, LOAD_BYTES, STORE_BYTES, MISSES, WRITEBACKS, N_COUNTERS };
static const char *NAMES[N_COUNTERS] = {"total", "loads", "stores", "load_bytes", "store_bytes", "llc_misses",
                                        "llc_writebacks"};

static uint64_t counts[MAX_VCPUS][N_COUNTERS];
static uint64_t begin[MAX_VCPUS][N_COUNTERS];
static uint64_t windows[MAX_WINDOWS][N_COUNTERS + 1]; /* totals, then the busiest thread's instructions */
static char *thread_lines[MAX_WINDOWS];
static int n_windows;
static int in_window;
static int overflow; /* a vCPU index beyond MAX_VCPUS was seen: its work is not counted */
static char out_path[4096];

/* the cache model: per vCPU, n_sets x ways tags (line address + 1, low bit = dirty after shifting), MRU first */
static unsigned llc_kb = 1024, ways = 16, n_sets;
static uint64_t *caches[MAX_VCPUS];

static void tb_exec(unsigned int vcpu, void *udata)
{
    if (vcpu < MAX_VCPUS) {
        __atomic_fetch_add(&counts[vcpu][INSNS], (uint64_t)(uintptr_t)udata, __ATOMIC_RELAXED);
    } else {
        overflow = 1;
    }
}

static void touch_line(unsigned int vcpu, uint64_t line, int store)
{
    uint64_t *set = caches[vcpu] + (line % n_sets) * ways;
    uint64_t tag = (line + 1) << 1;
    unsigned i;
    for (i = 0; i < ways; i++) {
        if ((set[i] & ~1ULL) == tag) {
            break;
        }
    }
    uint64_t entry;
    if (i < ways) {
        entry = set[i] | (uint64_t)store;
    } else {
        counts[vcpu][MISSES]++;
        i = ways - 1;
        if (set[i] & 1ULL) {
            counts[vcpu][WRITEBACKS]++;
        }
        entry = tag | (uint64_t)store;
    }
    memmove(set + 1, set, i * sizeof *set); /* move to the front: LRU order */
    set[0] = entry;
}

static void mem_access(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    if (vcpu >= MAX_VCPUS) {
        overflow = 1;
        return;
    }
    uint64_t size = 1ULL << qemu_plugin_mem_size_shift(info);
    int store = qemu_plugin_mem_is_store(info);
    /* only this vCPU's host thread writes its own counters and cache: no locks needed */
    counts[vcpu][store ? STORES : LOADS]++;
    counts[vcpu][store ? STORE_BYTES : LOAD_BYTES] += size;
    if (!n_sets) {
        return;
    }
    if (!caches[vcpu]) {
        caches[vcpu] = calloc((size_t)n_sets * ways, sizeof(uint64_t));
        if (!caches[vcpu]) {
            overflow = 1;
            return;
        }
    }
    for (uint64_t line = vaddr >> LINE_SHIFT; line <= (vaddr + size - 1) >> LINE_SHIFT; line++) {
        touch_line(vcpu, line, store);
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    for (size_t i = 0; i < n; i++) {
        qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), mem_access, QEMU_PLUGIN_CB_NO_REGS,
                                         QEMU_PLUGIN_MEM_RW, NULL);
    }
}

static uint64_t load(unsigned int vcpu, int k)
{
    return __atomic_load_n(&counts[vcpu][k], __ATOMIC_RELAXED);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num != NR_GETPRIORITY_AARCH64 || a1 != 0 || (a2 != MARK_BEGIN && a2 != MARK_END)) {
        return;
    }
    if (a2 == MARK_BEGIN) {
        for (int i = 0; i < MAX_VCPUS; i++) {
            for (int k = 0; k < N_COUNTERS; k++) {
                begin[i][k] = load(i, k);
            }
        }
        in_window = 1;
        return;
    }
    if (!in_window || n_windows >= MAX_WINDOWS) {
        return;
    }
    in_window = 0;
    uint64_t *w = windows[n_windows];
    memset(w, 0, sizeof windows[0]);
    size_t cap = 64, len = 0;
    char *line = malloc(cap);
    if (!line) {
        return;
    }
    line[0] = '\0';
    for (int i = 0; i < MAX_VCPUS; i++) {
        for (int k = 1; k < N_COUNTERS; k++) {
            w[k] += load(i, k) - begin[i][k];
        }
        uint64_t d = load(i, INSNS) - begin[i][INSNS];
        if (!d) {
            continue;
        }
        w[INSNS] += d;
        w[N_COUNTERS] = d > w[N_COUNTERS] ? d : w[N_COUNTERS];
        char item[64];
        int k = snprintf(item, sizeof item, "%s\"%d\": %" PRIu64, len ? ", " : "", i, d);
        if (len + k + 1 > cap) {
            cap = 2 * (len + k + 1);
            char *grown = realloc(line, cap);
            if (!grown) {
                free(line);
                return;
            }
            line = grown;
        }
        memcpy(line + len, item, k + 1);
        len += k;
    }
    thread_lines[n_windows] = line;
    n_windows++;
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    FILE *f = fopen(out_path, "w");
    if (!f) {
        fprintf(stderr, "edgekd insn plugin: cannot write %s\n", out_path);
        return;
    }
    for (int w = 0; w < n_windows; w++) {
        fprintf(f, "{\"window\": %d, \"max_thread\": %" PRIu64 ", \"threads\": {%s}", w, windows[w][N_COUNTERS],
                thread_lines[w]);
        for (int k = 0; k < N_COUNTERS; k++) {
            fprintf(f, ", \"%s\": %" PRIu64, NAMES[k], windows[w][k]);
        }
        fprintf(f, ", \"llc_kb\": %u, \"ways\": %u, \"overflow\": %s}\n", n_sets ? llc_kb : 0, ways,
                overflow ? "true" : "false");
    }
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        } else if (strncmp(argv[i], "llc_kb=", 7) == 0) {
            llc_kb = (unsigned)strtoul(argv[i] + 7, NULL, 10);
        } else if (strncmp(argv[i], "ways=", 5) == 0) {
            ways = (unsigned)strtoul(argv[i] + 5, NULL, 10);
        }
    }
    if (!out_path[0]) {
        fprintf(stderr, "edgekd insn plugin: pass out=PATH\n");
        return -1;
    }
    if (ways < 1 || ways > 64) {
        fprintf(stderr, "edgekd insn plugin: ways must be 1..64\n");
        return -1;
    }
    n_sets = llc_kb ? (unsigned)((uint64_t)llc_kb * 1024 / 64 / ways) : 0;
    if (llc_kb && !n_sets) {
        fprintf(stderr, "edgekd insn plugin: llc_kb too small for %u ways\n", ways);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
