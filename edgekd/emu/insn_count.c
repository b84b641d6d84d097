/*
 * edgekd TCG plugin: count guest instructions per thread between markers.
 *
 * The guest marks a window with getpriority(PRIO_PROCESS, MARK_BEGIN) ... getpriority(PRIO_PROCESS, MARK_END)
 * (the calls fail with ESRCH on the host; only the arguments matter). Every translated block adds its
 * instruction count to the counter of the vCPU (= guest thread) that executes it, so counts are exact per
 * translated block entered and independent of host speed. At each end marker the per-thread deltas since the
 * begin marker are stored; at exit they are written as one JSON object per line to the file named by the
 * plugin argument out=PATH:
 *   {"window": 0, "total": N, "max_thread": M, "threads": {"0": n0, "3": n3}}
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

static uint64_t counts[MAX_VCPUS];
static uint64_t begin[MAX_VCPUS];
static uint64_t windows[MAX_WINDOWS][2]; /* total, max over threads */
static char *thread_lines[MAX_WINDOWS];
static int n_windows;
static int in_window;
static int overflow; /* a vCPU index beyond MAX_VCPUS was seen: its instructions are not counted */
static char out_path[4096];

static void tb_exec(unsigned int vcpu, void *udata)
{
    if (vcpu < MAX_VCPUS) {
        __atomic_fetch_add(&counts[vcpu], (uint64_t)(uintptr_t)udata, __ATOMIC_RELAXED);
    } else {
        overflow = 1;
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num != NR_GETPRIORITY_AARCH64 || a1 != 0 || (a2 != MARK_BEGIN && a2 != MARK_END)) {
        return;
    }
    if (a2 == MARK_BEGIN) {
        for (int i = 0; i < MAX_VCPUS; i++) {
            begin[i] = __atomic_load_n(&counts[i], __ATOMIC_RELAXED);
        }
        in_window = 1;
        return;
    }
    if (!in_window || n_windows >= MAX_WINDOWS) {
        return;
    }
    in_window = 0;
    uint64_t total = 0, max = 0;
    size_t cap = 64, len = 0;
    char *line = malloc(cap);
    if (!line) {
        return;
    }
    line[0] = '\0';
    for (int i = 0; i < MAX_VCPUS; i++) {
        uint64_t d = __atomic_load_n(&counts[i], __ATOMIC_RELAXED) - begin[i];
        if (!d) {
            continue;
        }
        total += d;
        max = d > max ? d : max;
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
    windows[n_windows][0] = total;
    windows[n_windows][1] = max;
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
        fprintf(f, "{\"window\": %d, \"total\": %" PRIu64 ", \"max_thread\": %" PRIu64
                ", \"threads\": {%s}, \"overflow\": %s}\n",
                w, windows[w][0], windows[w][1], thread_lines[w], overflow ? "true" : "false");
    }
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        }
    }
    if (!out_path[0]) {
        fprintf(stderr, "edgekd insn plugin: pass out=PATH\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
