/*
 * emu.cpp — the CUDA emulator behind emu.h and rt.h: fibers for CUDA threads, the block
 * scheduler with checked barriers and warp collectives, and the runtime / cuBLAS subset lumen
 * uses (host memory, streams that run work at once or record it during capture, host-clock
 * events, replayable graphs, a host sgemm).
 *
 * Scheduling: the threads of a block are fibers on one host thread. A fiber runs until it parks
 * at a collective (__syncthreads, a warp collective) or returns. When no fiber can run, pending
 * collectives are resolved: a block barrier completes when every thread of the block waits at
 * one; a warp collective when every lane of its mask waits at the same collective with the same
 * mask. What can never complete (a thread returned while others wait at a barrier, threads at
 * different barriers, a lane missing from a mask) is an error: the launch stops and reports it.
 * Blocks run one after another, so results do not depend on host timing.
 */
#include "emu.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define LM_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LM_EMU_ASAN 1
#endif
#endif
#ifdef LM_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace lm_emu {

__thread thread_state *cur;

/* ---- context switching ------------------------------------------------------------------ */
#if defined(__x86_64__)
extern "C" void lm_emu_switch(void **save_sp, void *to_sp);
extern "C" void lm_emu_fiber_start();
asm(R"(
    .text
    .globl lm_emu_switch
    .type lm_emu_switch, @function
lm_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size lm_emu_switch, .-lm_emu_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

enum fstate { F_READY, F_BARRIER, F_WARP, F_DONE };

struct fiber {
    thread_state ts;
    fstate st;
    const char *site;      /* where it parks */
    /* warp collective */
    coll_op op;
    unsigned mask;
    uint64_t value, result;
    int param, width;
    warp_fn fn; /* C_FN */
    /* stack */
    char *stack_lo;
    size_t stack_size;
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t uc;
#endif
#ifdef LM_EMU_ASAN
    void *fake_stack;
#endif
};

struct sched {
    std::vector<fiber> fibers;
    std::vector<char *> stacks; /* pool, reused across blocks and launches */
    size_t stack_size = 0;
    fiber *running = nullptr;
    const std::function<void()> *body = nullptr;
#if defined(__x86_64__)
    void *sp = nullptr;
#else
    ucontext_t uc;
#endif
#ifdef LM_EMU_ASAN
    void *fake_stack = nullptr;
    const void *main_lo = nullptr;
    size_t main_size = 0;
#endif
    /* error of the current launch */
    bool err = false;
    std::string msg;
    /* shared memory arrays declared by kernels on this host thread */
    std::vector<std::pair<void *, size_t>> shared;
    std::vector<unsigned char> dyn_smem;
};

static thread_local sched *S;

static sched &sch() {
    if (!S) S = new sched(); /* one per host thread, kept until exit */
    return *S;
}

static size_t stack_bytes() {
#ifdef LM_EMU_ASAN
    return 512u << 10;
#else
    return 256u << 10;
#endif
}

static char *stack_alloc(size_t size) {
    /* a PROT_NONE guard page below the stack turns an overflow into a fault, not corruption */
    const size_t page = 4096;
    void *p = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    mprotect(p, page, PROT_NONE);
    return (char *)p + page;
}

void fail(const char *fmt, ...) {
    sched &s = sch();
    if (s.err) return;
    s.err = true;
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char where[160] = "";
    if (cur)
        snprintf(where, sizeof where, " [thread (%u,%u,%u) block (%u,%u,%u)]", cur->tid.x, cur->tid.y, cur->tid.z, cur->bid.x,
                 cur->bid.y, cur->bid.z);
    s.msg = std::string(buf) + where;
}

bool failed() { return sch().err; }

void shared_register(void *p, size_t bytes) {
    sched &s = sch();
    s.shared.emplace_back(p, bytes);
    memset(p, 0xff, bytes);
}

void shared_oob(const char *name, size_t i, size_t n, const char *file, int line) {
    if (file && line)
        fail("shared memory out of range: %s[%zu] of %zu elements at %s:%d", name, i, n, file, line);
    else
        fail("shared memory out of range: %s[%zu] of %zu elements", name, i, n);
}

/* ---- fibers ------------------------------------------------------------------------------ */
static void switch_to_fiber(sched &s, fiber *f) {
    s.running = f;
    cur = &f->ts;
#ifdef LM_EMU_ASAN
    __sanitizer_start_switch_fiber(&s.fake_stack, f->stack_lo, f->stack_size);
#endif
#if defined(__x86_64__)
    lm_emu_switch(&s.sp, f->sp);
#else
    swapcontext(&s.uc, &f->uc);
#endif
#ifdef LM_EMU_ASAN
    __sanitizer_finish_switch_fiber(s.fake_stack, nullptr, nullptr);
#endif
    cur = nullptr;
    s.running = nullptr;
}

/* from a fiber back to the scheduler; `dying` when the fiber has returned for good */
static void switch_to_sched(sched &s, fiber *f, bool dying) {
#ifdef LM_EMU_ASAN
    __sanitizer_start_switch_fiber(dying ? nullptr : &f->fake_stack, s.main_lo, s.main_size);
#else
    (void)dying;
#endif
#if defined(__x86_64__)
    lm_emu_switch(&f->sp, s.sp);
#else
    swapcontext(&f->uc, &s.uc);
#endif
#ifdef LM_EMU_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, nullptr, nullptr);
#endif
}

static void fiber_main() {
    sched &s = sch();
#ifdef LM_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &s.main_lo, &s.main_size);
#endif
    fiber *f = s.running;
    (*s.body)();
    f->st = F_DONE;
    switch_to_sched(s, f, true);
    __builtin_trap(); /* a finished fiber is never resumed */
}

#if defined(__x86_64__)
extern "C" void lm_emu_fiber_entry() { fiber_main(); }
asm(R"(
    .text
    .globl lm_emu_fiber_start
    .type lm_emu_fiber_start, @function
lm_emu_fiber_start:
    andq $-16, %rsp
    call lm_emu_fiber_entry
    ud2
    .size lm_emu_fiber_start, .-lm_emu_fiber_start
    .text
)");
#else
static void fiber_main_uc() { fiber_main(); }
#endif

static void fiber_init(sched &s, fiber *f, char *stack) {
    f->stack_lo = stack;
    f->stack_size = s.stack_size;
#if defined(__x86_64__)
    /* initial frame for lm_emu_switch: 6 callee-saved registers, then the "return address"
       lm_emu_fiber_start; 16-byte aligned so that the entry sees a call-aligned stack */
    uintptr_t top = ((uintptr_t)(stack + s.stack_size)) & ~(uintptr_t)15;
    void **sp = (void **)(top - 64);
    for (int i = 0; i < 6; i++) sp[i] = nullptr;
    sp[6] = (void *)&lm_emu_fiber_start;
    sp[7] = nullptr;
    f->sp = sp;
#else
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = stack;
    f->uc.uc_stack.ss_size = s.stack_size;
    f->uc.uc_link = nullptr;
    makecontext(&f->uc, fiber_main_uc, 0);
#endif
#ifdef LM_EMU_ASAN
    f->fake_stack = nullptr;
#endif
}

/* park the running fiber until the scheduler resumes it */
static void park(sched &s) { switch_to_sched(s, s.running, false); }

void syncthreads(const char *site) {
    sched &s = sch();
    fiber *f = s.running;
    if (!f) {
        fail("__syncthreads outside a kernel");
        return;
    }
    f->st = F_BARRIER;
    f->site = site;
    park(s);
}

uint64_t warp_collective(coll_op op, unsigned mask, uint64_t value, int param, int width, const char *site) {
    sched &s = sch();
    fiber *f = s.running;
    if (!f) {
        fail("warp collective outside a kernel");
        return value;
    }
    if (!(mask >> f->ts.lane & 1u)) {
        fail("warp collective at %s: calling lane %u is not in its mask 0x%08x", site, f->ts.lane, mask);
        return value;
    }
    if (width <= 0 || width > 32 || (width & (width - 1))) {
        fail("warp collective at %s: width %d is not a power of two <= 32", site, width);
        return value;
    }
    f->st = F_WARP;
    f->site = site;
    f->op = op;
    f->mask = mask;
    f->value = value;
    f->param = param;
    f->width = width;
    park(s);
    return f->result;
}

void warp_exec(warp_fn fn, void *arg, const char *site) {
    sched &s = sch();
    fiber *f = s.running;
    if (!f) {
        fail("warp instruction outside a kernel");
        return;
    }
    f->fn = fn;
    warp_collective(C_FN, 0xffffffffu, (uint64_t)(uintptr_t)arg, 0, 32, site);
}

/* resolve a warp collective whose participants have all arrived */
static void warp_resolve(fiber *lanes[32], unsigned mask) {
    fiber *f0 = nullptr;
    for (int l = 0; l < 32; l++)
        if (mask >> l & 1u) {
            f0 = lanes[l];
            break;
        }
    const coll_op op = f0->op;
    if (op == C_FN) {
        void *args[32];
        for (int l = 0; l < 32; l++) {
            if (lanes[l]->fn != f0->fn) {
                cur = &lanes[l]->ts;
                fail("warp instruction at %s: lanes execute different instructions", f0->site);
                cur = nullptr;
                return;
            }
            args[l] = (void *)(uintptr_t)lanes[l]->value;
        }
        f0->fn(args);
        for (int l = 0; l < 32; l++) lanes[l]->result = 0, lanes[l]->st = F_READY;
        return;
    }
    uint64_t acc = 0;
    switch (op) {
    case C_BALLOT:
    case C_ANY:
    case C_ALL: {
        unsigned b = 0;
        for (int l = 0; l < 32; l++)
            if (mask >> l & 1u) b |= (lanes[l]->value ? 1u : 0u) << l;
        acc = op == C_BALLOT ? b : op == C_ANY ? (b != 0) : (b == mask);
        break;
    }
    case C_RADD:
    case C_RMIN:
    case C_RMAX: {
        uint32_t r = op == C_RADD ? 0u : op == C_RMIN ? 0xffffffffu : 0u;
        for (int l = 0; l < 32; l++) {
            if (!(mask >> l & 1u)) continue;
            const uint32_t v = (uint32_t)lanes[l]->value;
            r = op == C_RADD ? r + v : op == C_RMIN ? std::min(r, v) : std::max(r, v);
        }
        acc = r;
        break;
    }
    default: break;
    }
    for (int l = 0; l < 32; l++) {
        if (!(mask >> l & 1u)) continue;
        fiber *f = lanes[l];
        const int w = f->width, seg = l / w * w, li = l % w;
        int src = l;
        switch (op) {
        case C_SHFL: src = seg + (f->param & (w - 1)); break;
        case C_SHFL_UP: src = li >= f->param ? l - f->param : l; break;
        case C_SHFL_DOWN: src = li + f->param < w ? l + f->param : l; break;
        case C_SHFL_XOR: {
            const int x = l ^ f->param;
            src = x / w == l / w ? x : l;
            break;
        }
        default: break;
        }
        if (op == C_SHFL || op == C_SHFL_UP || op == C_SHFL_DOWN || op == C_SHFL_XOR) {
            if (src < 0 || src > 31 || !(mask >> src & 1u)) {
                cur = &f->ts;
                fail("warp shuffle at %s: lane %d reads lane %d, which is not in the mask 0x%08x", f->site, l, src, mask);
                cur = nullptr;
                return;
            }
            f->result = lanes[src]->value;
        } else {
            f->result = op == C_SYNCWARP ? 0 : acc;
        }
        f->st = F_READY;
    }
}

/* run one block; returns false on an error (recorded) */
static bool run_block(sched &s, const launch_config &cfg, uint3 bid) {
    const unsigned nt = cfg.block.x * cfg.block.y * cfg.block.z;
    for (auto &sh : s.shared) memset(sh.first, 0xff, sh.second);
    if (cfg.smem) memset(s.dyn_smem.data(), 0xff, cfg.smem);
    for (unsigned i = 0; i < nt; i++) {
        fiber *f = &s.fibers[i];
        *f = fiber{};
        f->ts.tid = make_uint3(i % cfg.block.x, i / cfg.block.x % cfg.block.y, i / (cfg.block.x * cfg.block.y));
        f->ts.bid = bid;
        f->ts.bdim = cfg.block;
        f->ts.gdim = cfg.grid;
        f->ts.lane = i % 32;
        f->ts.warp = i / 32;
        f->ts.dyn_smem = cfg.smem ? s.dyn_smem.data() : nullptr;
        f->ts.dyn_smem_bytes = cfg.smem;
        f->st = F_READY;
        fiber_init(s, f, s.stacks[i]);
    }
    for (;;) {
        bool ran = false;
        for (unsigned i = 0; i < nt && !s.err; i++) {
            if (s.fibers[i].st != F_READY) continue;
            switch_to_fiber(s, &s.fibers[i]);
            ran = true;
        }
        if (s.err) return false;
        unsigned done = 0, at_barrier = 0, at_warp = 0;
        for (unsigned i = 0; i < nt; i++) {
            const fstate st = s.fibers[i].st;
            done += st == F_DONE;
            at_barrier += st == F_BARRIER;
            at_warp += st == F_WARP;
        }
        if (done == nt) return true;
        /* warp collectives whose lanes have all arrived */
        bool resolved = false;
        const unsigned nwarps = (nt + 31) / 32;
        for (unsigned w = 0; w < nwarps && at_warp; w++) {
            fiber *lanes[32] = {};
            unsigned waiting = 0;
            for (unsigned l = 0; l < 32 && w * 32 + l < nt; l++) {
                lanes[l] = &s.fibers[w * 32 + l];
                if (lanes[l]->st == F_WARP) waiting |= 1u << l;
            }
            /* group the waiting lanes by mask; a group completes when all its lanes are here */
            unsigned pending = waiting;
            while (pending) {
                const int l0 = __builtin_ctz(pending);
                const unsigned mask = lanes[l0]->mask;
                pending &= ~(1u << l0);
                if ((mask & waiting) != mask) continue; /* some lanes still on their way */
                bool same = true;
                for (int l = 0; l < 32; l++)
                    if ((mask >> l & 1u) && (lanes[l]->mask != mask || lanes[l]->op != lanes[l0]->op)) same = false;
                if (!same) {
                    cur = &lanes[l0]->ts;
                    fail("warp collective at %s: the lanes of mask 0x%08x are at different collectives or pass different "
                         "masks",
                         lanes[l0]->site, mask);
                    cur = nullptr;
                    return false;
                }
                warp_resolve(lanes, mask);
                if (s.err) return false;
                pending &= ~mask;
                waiting &= ~mask;
                resolved = true;
            }
        }
        if (resolved) continue;
        if (ran) continue;
        /* nothing can run: a block barrier, or a deadlock */
        if (at_barrier && at_barrier + done == nt && !at_warp) {
            const char *site = nullptr;
            for (unsigned i = 0; i < nt; i++) {
                fiber *f = &s.fibers[i];
                if (f->st != F_BARRIER) continue;
                if (!site) site = f->site;
                if (strcmp(site, f->site) != 0) {
                    cur = &f->ts;
                    fail("__syncthreads: threads of one block wait at different barriers (%s and %s)", site, f->site);
                    cur = nullptr;
                    return false;
                }
            }
            if (done) {
                for (unsigned i = 0; i < nt; i++)
                    if (s.fibers[i].st == F_DONE) {
                        cur = &s.fibers[i].ts;
                        break;
                    }
                fail("__syncthreads at %s is not reached by every thread of the block: %u of %u threads returned before it",
                     site, done, nt);
                cur = nullptr;
                return false;
            }
            for (unsigned i = 0; i < nt; i++) s.fibers[i].st = F_READY;
            continue;
        }
        /* deadlock: describe the first waiting fiber */
        for (unsigned i = 0; i < nt; i++) {
            fiber *f = &s.fibers[i];
            if (f->st == F_WARP) {
                cur = &f->ts;
                unsigned missing = f->mask;
                for (unsigned l = 0; l < 32 && f->ts.warp * 32 + l < nt; l++)
                    if (s.fibers[f->ts.warp * 32 + l].st == F_WARP) missing &= ~(1u << l);
                fail("warp collective at %s never completes: lanes 0x%08x of its mask 0x%08x %s", f->site, missing, f->mask,
                     "returned, wait elsewhere or do not exist");
                cur = nullptr;
                return false;
            }
        }
        for (unsigned i = 0; i < nt; i++) {
            fiber *f = &s.fibers[i];
            if (f->st == F_BARRIER) {
                cur = &f->ts;
                fail("__syncthreads at %s never completes: other threads of the block wait at warp collectives", f->site);
                cur = nullptr;
                return false;
            }
        }
        fail("deadlock in a block");
        return false;
    }
}

int launch(const launch_config &cfg, std::function<void()> body, const char *name) {
    sched &s = sch();
    s.err = false;
    s.msg.clear();
    const unsigned nt = cfg.block.x * cfg.block.y * cfg.block.z;
    if (!nt || cfg.block.x > 1024 || cfg.block.y > 1024 || cfg.block.z > 64 || nt > 1024 || !cfg.grid.x || !cfg.grid.y ||
        !cfg.grid.z || cfg.grid.y > 65535 || cfg.grid.z > 65535) {
        fail("kernel %s: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)", name, cfg.grid.x, cfg.grid.y, cfg.grid.z,
             cfg.block.x, cfg.block.y, cfg.block.z);
        return 1;
    }
    if (s.stack_size == 0) s.stack_size = stack_bytes();
    while (s.stacks.size() < nt) {
        char *st = stack_alloc(s.stack_size);
        if (!st) {
            fail("kernel %s: cannot allocate fiber stacks", name);
            return 1;
        }
        s.stacks.push_back(st);
    }
    if (s.fibers.size() < nt) s.fibers.resize(nt);
    if (s.dyn_smem.size() < cfg.smem) s.dyn_smem.resize(cfg.smem);
    s.body = &body;
    for (unsigned z = 0; z < cfg.grid.z; z++)
        for (unsigned y = 0; y < cfg.grid.y; y++)
            for (unsigned x = 0; x < cfg.grid.x; x++)
                if (!run_block(s, cfg, make_uint3(x, y, z))) {
                    s.body = nullptr;
                    s.msg = std::string("kernel ") + name + ": " + s.msg;
                    return 1;
                }
    s.body = nullptr;
    return 0;
}

const std::string &last_message() { return sch().msg; }

} // namespace lm_emu

/* ---- the runtime subset (rt.h) ------------------------------------------------------------ */
#include "../rt.h"

namespace LM_CUDA_NS {
namespace rt {

enum { E_OK = 0, E_KERNEL = 1, E_INVALID = 2, E_OOM = 3, E_CAPTURE = 4 };

struct stream {
    bool capturing = false;
    std::vector<std::function<int()>> rec;
};
struct graph {
    std::vector<std::function<int()>> ops;
};
struct event {
    double t = 0;
};

static thread_local int sticky;         /* first unread error */
static thread_local std::string errmsg; /* its description */
static std::mutex mem_mutex;
static std::map<void *, size_t> allocations; /* device allocations: base -> size */
static std::map<const void *, int> dyn_smem_limit;
static const size_t emu_mem = 8ull << 30; /* the emulated device's memory */
static size_t mem_used;

static int err(int code, const std::string &m) {
    if (!sticky) {
        sticky = code;
        errmsg = m;
    }
    return code;
}

static double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/* run an operation now, or record it into a capturing stream */
static int submit(stream_t st, std::function<int()> op) {
    stream *s = (stream *)st;
    if (s && s->capturing) {
        s->rec.push_back(std::move(op));
        return 0;
    }
    return op();
}

int device_count(int *n) {
    *n = 1;
    return 0;
}
int set_device(int d) { return d == 0 ? 0 : err(E_INVALID, "no such device"); }
int get_props(int d, device_props *p) {
    if (d != 0) return err(E_INVALID, "no such device");
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "lumen CUDA emulator (host fibers)");
    p->total_mem = emu_mem;
    p->sm_count = 1;
    p->cc_major = 8;
    p->cc_minor = 0;
    p->bandwidth_gbs = 0;
    p->smem_optin = 99 * 1024;
    p->l2_bytes = 40u << 20;
    return 0;
}
int mem_info(size_t *free_b, size_t *total_b) {
    std::lock_guard<std::mutex> g(mem_mutex);
    *free_b = emu_mem - mem_used;
    *total_b = emu_mem;
    return 0;
}
int malloc_device(void **p, size_t n) {
    std::lock_guard<std::mutex> g(mem_mutex);
    *p = nullptr;
    if (n > emu_mem - mem_used) return err(E_OOM, "out of memory on the emulated device");
    void *q = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!q) return err(E_OOM, "out of host memory for the emulated device");
    allocations[q] = n;
    mem_used += n;
    *p = q;
    return 0;
}
int free_device(void *p) {
    if (!p) return 0;
    std::lock_guard<std::mutex> g(mem_mutex);
    auto it = allocations.find(p);
    if (it == allocations.end()) return err(E_INVALID, "free of a pointer that is not a device allocation");
    mem_used -= it->second;
    allocations.erase(it);
    free(p);
    return 0;
}
int malloc_host(void **p, size_t n) {
    *p = aligned_alloc(64, (n + 63) / 64 * 64);
    return *p ? 0 : err(E_OOM, "out of host memory");
}
int free_host(void *p) {
    free(p);
    return 0;
}
int memcpy_h2d(void *d, const void *s, size_t n, stream_t st) {
    return submit(st, [=]() {
        memcpy(d, s, n);
        return 0;
    });
}
int memcpy_d2h(void *d, const void *s, size_t n, stream_t st) { return memcpy_h2d(d, s, n, st); }
int memcpy_d2d(void *d, const void *s, size_t n, stream_t st) { return memcpy_h2d(d, s, n, st); }
int memset_d(void *d, int v, size_t n, stream_t st) {
    return submit(st, [=]() {
        memset(d, v, n);
        return 0;
    });
}
int stream_create(stream_t *s) {
    *s = new stream();
    return 0;
}
int stream_destroy(stream_t s) {
    delete (stream *)s;
    return 0;
}
int stream_sync(stream_t s) {
    if (s && ((stream *)s)->capturing) return err(E_CAPTURE, "stream synchronize during capture");
    return sticky;
}
int event_create(event_t *e) {
    *e = new event();
    return 0;
}
int event_destroy(event_t e) {
    delete (event *)e;
    return 0;
}
int event_record(event_t e, stream_t st) {
    event *ev = (event *)e;
    return submit(st, [=]() {
        ev->t = now_ms();
        return 0;
    });
}
int event_sync(event_t) { return sticky; }
int event_elapsed_ms(float *ms, event_t a, event_t b) {
    *ms = (float)(((event *)b)->t - ((event *)a)->t);
    return 0;
}
int capture_begin(stream_t st) {
    stream *s = (stream *)st;
    if (!s) return err(E_CAPTURE, "cannot capture the legacy default stream");
    if (s->capturing) return err(E_CAPTURE, "stream is already capturing");
    s->capturing = true;
    s->rec.clear();
    return 0;
}
int capture_end(stream_t st, graph_exec_t *out) {
    stream *s = (stream *)st;
    if (!s || !s->capturing) return err(E_CAPTURE, "stream is not capturing");
    s->capturing = false;
    graph *g = new graph();
    g->ops.swap(s->rec);
    *out = g;
    return 0;
}
int graph_launch(graph_exec_t g, stream_t st) {
    graph *gr = (graph *)g;
    return submit(st, [gr]() {
        for (auto &op : gr->ops)
            if (int e = op()) return e;
        return 0;
    });
}
int graph_destroy(graph_exec_t g) {
    delete (graph *)g;
    return 0;
}
int last_error() {
    const int e = sticky;
    sticky = 0;
    return e;
}
int peek_error() { return sticky; }
const char *error_string(int e) {
    if (e == 0) return "no error";
    if (!errmsg.empty()) return errmsg.c_str();
    return e == E_OOM ? "out of memory" : e == E_KERNEL ? "kernel error" : "invalid argument";
}
int set_max_dyn_smem(const void *kernel, int bytes) {
    if (bytes > 99 * 1024) return err(E_INVALID, "dynamic shared memory above the device's opt-in limit");
    dyn_smem_limit[kernel] = bytes;
    return 0;
}
int launch_emu(const char *name, const void *kernel, dim3 grid, dim3 block, size_t smem, stream_t st,
               std::function<void()> body) {
    auto it = dyn_smem_limit.find(kernel);
    const size_t limit = it != dyn_smem_limit.end() ? (size_t)it->second : 48 * 1024;
    if (smem > limit)
        return err(E_INVALID, std::string("kernel ") + name + ": " + std::to_string(smem) +
                                  " bytes of dynamic shared memory exceed its limit of " + std::to_string(limit) +
                                  " (set_max_dyn_smem)");
    const lm_emu::launch_config cfg = {grid, block, smem, st};
    return submit(st, [cfg, body, name]() {
        if (lm_emu::launch(cfg, body, name)) return err(E_KERNEL, lm_emu::last_message());
        return 0;
    });
}

int blas_create(blas_t *b) {
    *b = new int(0);
    return 0;
}
int blas_destroy(blas_t b) {
    delete (int *)b;
    return 0;
}
int sgemm_tn(blas_t, stream_t st, int m, int n, int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    if (m < 0 || n < 0 || k < 0 || lda < k || ldb < k || ldc < m) return err(E_INVALID, "sgemm: invalid dimensions");
    return submit(st, [=]() {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                float acc = 0.0f;
                const float *a = A + (size_t)i * lda, *b = B + (size_t)j * ldb;
                for (int p = 0; p < k; p++) acc += a[p] * b[p];
                C[(size_t)j * ldc + i] = acc;
            }
        return 0;
    });
}

} // namespace rt
} // namespace LM_CUDA_NS
