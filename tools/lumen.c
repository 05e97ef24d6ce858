/*
 * lumen.c — the `lumen` command line: run, chat, info, perplexity, logits, bench.
 * Everything goes through the public API (include/lumen.h); the CLI is also its first user.
 */
#define _GNU_SOURCE
#include "lumen.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct opts {
    const char *model, *prompt, *file, *tokens, *out, *backend, *system, *qtype;
    int threads, n_predict, n_ctx, n_batch, n_prompt_bench, n_gen_bench, reps;
    bool chat, think, no_display_prompt, quiet, profile, per_channel, requantize;
    lm_kv_type kv_type;
    lm_sampler_params sp;
    /* plan */
    uint64_t vram, reserve;
    double gpu_bw, cpu_bw;
    int parallel, gpu_layers, kv_cells, kv_page;
    const char *cpu_tensors;
    bool reserve_set;
} opts;

static void die(const char *what) {
    fprintf(stderr, "lumen: error: %s%s%s\n", what, *lm_last_error() ? ": " : "", lm_last_error());
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: lumen COMMAND [options]\n"
            "commands:\n"
            "  run         -m MODEL -p PROMPT        generate text, streamed, with tokens/s\n"
            "  chat        -m MODEL [--system S]     interactive chat with the model's template\n"
            "  info        -m MODEL                  metadata, tensor table, memory estimate\n"
            "  perplexity  -m MODEL -f FILE          perplexity of a text file\n"
            "  logits      -m MODEL --tokens T.txt -o OUT.f32   teacher-forced logits\n"
            "  bench       -m MODEL [-p 512 -n 128]  prefill / decode throughput\n"
            "  quantize    -m MODEL -o OUT --type T  weight matrices as i4_g128 or f8_e4m3 (lumen's formats)\n"
            "  plan        MODEL [--vram 16G | --gpu NAME] [-c N] [--kv T] [--parallel N]\n"
            "                                        where weights and KV go on a GPU + CPU, predicted tokens/s\n"
            "options:\n"
            "  -m, --model PATH        GGUF model file\n"
            "  -p, --prompt TEXT       prompt (run) / prompt tokens (bench)\n"
            "  -n, --n-predict N       tokens to generate (run, default 128) / to decode (bench)\n"
            "  -f, --file PATH         text file (perplexity)\n"
            "      --tokens PATH       whitespace-separated token ids (logits)\n"
            "  -o, --out PATH          output file (logits)\n"
            "  -c, --ctx N             context length (default: min(model, 4096))\n"
            "  -b, --batch N           max tokens per decode call (default 512)\n"
            "  -t, --threads N         CPU threads (default: all cores)\n"
            "      --backend NAME      cpu (default), vulkan, cuda (as compiled in)\n"
            "      --chat              run: wrap the prompt in the chat template\n"
            "      --think             chat templates: enable thinking (Gemma 4)\n"
            "      --system TEXT       chat: system prompt\n"
            "      --temp F --top-k N --top-p F --min-p F --repeat-penalty F --presence-penalty F\n"
            "      --frequency-penalty F --repeat-last-n N --seed N   sampling (temp 0 = greedy)\n"
            "      --reps N            bench repetitions (default 3)\n"
            "      --profile           bench: per-op device time, GB/s and GFLOP/s of each test\n"
            "      --kv TYPE           KV-cache storage: f16 (default), bf16, f32, q8_0, fp8 (8-bit: half the memory)\n"
            "      --kv-f32            same as --kv f32\n"
            "      --type T            quantize: i4_g128 (4.25 bits) or f8_e4m3 (8.25 bits)\n"
            "      --per-channel       quantize f8_e4m3: one scale per row\n"
            "      --requantize        quantize: also convert matrices already quantized\n"
            "placement (plan; and run, chat, bench, perplexity, logits on a cuda/vulkan backend, which split the\n"
            "model between the GPU and the CPU when it does not fit: the automatic plan, or these overrides):\n"
            "      --vram SIZE         GPU memory to plan for (16G, 24GiB, 12000M; default: the device's free memory)\n"
            "      --gpu NAME          a card's memory and bandwidth: rtx3060-12 rtx3090 rtx4060ti-16 rtx4080\n"
            "                          rtx4090 rtx5080 rtx5090 a100-80 h100\n"
            "      --gpu-bw GBS        GPU memory bandwidth in GB/s (default: the device's / the card's)\n"
            "      --cpu-bw GBS        CPU memory bandwidth in GB/s (default: measured)\n"
            "      --reserve SIZE      GPU memory kept free (default 512M)\n"
            "      --parallel N        parallel sequences\n"
            "      --kv-cells N        cells of the full-attention KV page pool shared by all sequences\n"
            "                          (default: ctx x parallel, so each sequence can reach the full context)\n"
            "      --kv-page N         cells per page of that pool (default 256)\n"
            "      --gpu-layers N      the last N layers on the GPU instead of the automatic plan\n"
            "      --cpu-tensors REGEX tensors kept on the CPU (extended regex, e.g. _exps for MoE experts)\n");
}

enum {
    O_TOKENS = 1000, O_BACKEND, O_CHAT, O_THINK, O_SYSTEM, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_REP, O_PRES, O_FREQ, O_LASTN,
    O_SEED, O_REPS, O_KVF32, O_KV, O_QUIET, O_PROFILE, O_QTYPE, O_PERCH, O_REQUANT, O_VRAM, O_GPU, O_GPUBW, O_CPUBW,
    O_RESERVE, O_PARALLEL, O_GPULAYERS, O_CPUTENSORS, O_KVCELLS, O_KVPAGE
};

/* "16G", "24GiB", "12000M", "512MiB", "1T", or bytes; binary units */
static uint64_t size_arg(const char *s, const char *name) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    uint64_t mult = 1;
    if (*end == 'K' || *end == 'k') mult = 1ull << 10, end++;
    else if (*end == 'M' || *end == 'm') mult = 1ull << 20, end++;
    else if (*end == 'G' || *end == 'g') mult = 1ull << 30, end++;
    else if (*end == 'T' || *end == 't') mult = 1ull << 40, end++;
    if (mult > 1 && (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "ib") || !strcmp(end, "b"))) end += strlen(end);
    if (errno || *end || !isfinite(v) || v < 0 || v * (double)mult > 1e18) {
        fprintf(stderr, "lumen: error: %s must be a size like 16G or 512M, got '%s'\n", name, s);
        exit(2);
    }
    return (uint64_t)(v * (double)mult);
}

/* consumer and data-center cards: memory (GiB) and nominal bandwidth (GB/s) */
static const struct {
    const char *name;
    double gib, gbs;
} gpu_presets[] = {
    {"rtx3060-12", 12, 360}, {"rtx3090", 24, 936}, {"rtx4060ti-16", 16, 288}, {"rtx4080", 16, 717},
    {"rtx4090", 24, 1008},   {"rtx5080", 16, 960}, {"rtx5090", 32, 1792},     {"a100-80", 80, 2039},
    {"h100", 80, 3350},
};

static long num(const char *s, const char *name, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "lumen: error: %s must be an integer in [%ld, %ld], got '%s'\n", name, lo, hi, s);
        exit(2);
    }
    return v;
}

static float fnum(const char *s, const char *name) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || !isfinite(v)) {
        fprintf(stderr, "lumen: error: %s must be a number, got '%s'\n", name, s);
        exit(2);
    }
    return v;
}

static void parse(int argc, char **argv, opts *o) {
    static const struct option lo[] = {
        {"model", 1, 0, 'm'}, {"prompt", 1, 0, 'p'}, {"n-predict", 1, 0, 'n'}, {"file", 1, 0, 'f'},
        {"out", 1, 0, 'o'}, {"ctx", 1, 0, 'c'}, {"batch", 1, 0, 'b'}, {"threads", 1, 0, 't'},
        {"tokens", 1, 0, O_TOKENS}, {"backend", 1, 0, O_BACKEND}, {"chat", 0, 0, O_CHAT}, {"think", 0, 0, O_THINK},
        {"system", 1, 0, O_SYSTEM}, {"temp", 1, 0, O_TEMP}, {"top-k", 1, 0, O_TOPK}, {"top-p", 1, 0, O_TOPP},
        {"min-p", 1, 0, O_MINP}, {"repeat-penalty", 1, 0, O_REP}, {"presence-penalty", 1, 0, O_PRES},
        {"frequency-penalty", 1, 0, O_FREQ}, {"repeat-last-n", 1, 0, O_LASTN}, {"seed", 1, 0, O_SEED},
        {"reps", 1, 0, O_REPS}, {"kv-f32", 0, 0, O_KVF32}, {"kv", 1, 0, O_KV}, {"quiet", 0, 0, O_QUIET}, {"profile", 0, 0, O_PROFILE},
        {"type", 1, 0, O_QTYPE}, {"per-channel", 0, 0, O_PERCH}, {"requantize", 0, 0, O_REQUANT},
        {"vram", 1, 0, O_VRAM}, {"gpu", 1, 0, O_GPU}, {"gpu-bw", 1, 0, O_GPUBW}, {"cpu-bw", 1, 0, O_CPUBW},
        {"reserve", 1, 0, O_RESERVE}, {"parallel", 1, 0, O_PARALLEL}, {"gpu-layers", 1, 0, O_GPULAYERS},
        {"cpu-tensors", 1, 0, O_CPUTENSORS}, {"kv-cells", 1, 0, O_KVCELLS}, {"kv-page", 1, 0, O_KVPAGE},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "m:p:n:f:o:c:b:t:h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'n': o->n_predict = (int)num(optarg, "-n", 0, 1 << 24); break;
        case 'f': o->file = optarg; break;
        case 'o': o->out = optarg; break;
        case 'c': o->n_ctx = (int)num(optarg, "--ctx", 1, 1 << 24); break;
        case 'b': o->n_batch = (int)num(optarg, "--batch", 1, 65536); break;
        case 't': o->threads = (int)num(optarg, "--threads", 1, 1024); break;
        case O_TOKENS: o->tokens = optarg; break;
        case O_BACKEND: o->backend = optarg; break;
        case O_CHAT: o->chat = true; break;
        case O_THINK: o->think = true; break;
        case O_SYSTEM: o->system = optarg; break;
        case O_TEMP: o->sp.temperature = fnum(optarg, "--temp"); break;
        case O_TOPK: o->sp.top_k = (int)num(optarg, "--top-k", 0, 1 << 24); break;
        case O_TOPP: o->sp.top_p = fnum(optarg, "--top-p"); break;
        case O_MINP: o->sp.min_p = fnum(optarg, "--min-p"); break;
        case O_REP: o->sp.repeat_penalty = fnum(optarg, "--repeat-penalty"); break;
        case O_PRES: o->sp.presence_penalty = fnum(optarg, "--presence-penalty"); break;
        case O_FREQ: o->sp.frequency_penalty = fnum(optarg, "--frequency-penalty"); break;
        case O_LASTN: o->sp.penalty_last_n = (int)num(optarg, "--repeat-last-n", 0, 1 << 20); break;
        case O_SEED: o->sp.seed = (uint64_t)num(optarg, "--seed", 0, 0x7fffffffL); break;
        case O_REPS: o->reps = (int)num(optarg, "--reps", 1, 1000); break;
        case O_KVF32: o->kv_type = LM_KV_F32; break;
        case O_KV:
            if (lm_kv_type_parse(optarg, &o->kv_type)) {
                fprintf(stderr, "lumen: error: %s\n", lm_last_error());
                exit(2);
            }
            break;
        case O_QUIET: o->quiet = true; break;
        case O_PROFILE: o->profile = true; break;
        case O_QTYPE: o->qtype = optarg; break;
        case O_PERCH: o->per_channel = true; break;
        case O_REQUANT: o->requantize = true; break;
        case O_VRAM: o->vram = size_arg(optarg, "--vram"); break;
        case O_GPU: {
            size_t i = 0, n = sizeof gpu_presets / sizeof gpu_presets[0];
            while (i < n && strcmp(gpu_presets[i].name, optarg)) i++;
            if (i == n) {
                fprintf(stderr, "lumen: error: unknown --gpu '%s' (lumen --help lists the cards)\n", optarg);
                exit(2);
            }
            if (!o->vram) o->vram = (uint64_t)(gpu_presets[i].gib * (double)(1ull << 30));
            if (o->gpu_bw <= 0) o->gpu_bw = gpu_presets[i].gbs;
            break;
        }
        case O_GPUBW: o->gpu_bw = fnum(optarg, "--gpu-bw"); break;
        case O_CPUBW: o->cpu_bw = fnum(optarg, "--cpu-bw"); break;
        case O_RESERVE: o->reserve = size_arg(optarg, "--reserve"), o->reserve_set = true; break;
        case O_PARALLEL: o->parallel = (int)num(optarg, "--parallel", 1, 1024); break;
        case O_GPULAYERS: o->gpu_layers = (int)num(optarg, "--gpu-layers", 0, 1 << 20); break;
        case O_CPUTENSORS: o->cpu_tensors = optarg; break;
        case O_KVCELLS: o->kv_cells = (int)num(optarg, "--kv-cells", 1, 1 << 30); break;
        case O_KVPAGE: o->kv_page = (int)num(optarg, "--kv-page", 1, 1 << 24); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind + 1 == argc && !o->model) o->model = argv[optind++]; /* lumen plan MODEL */
    if (optind < argc) {
        fprintf(stderr, "lumen: error: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if (!o->model) {
        fprintf(stderr, "lumen: error: -m MODEL is required\n");
        exit(2);
    }
}

static void progress(float f, void *u) {
    (void)u;
    fprintf(stderr, "\rloading weights: %3.0f%%", 100.0 * f);
    if (f >= 1.0f) fprintf(stderr, "\n");
}

static lm_model *load(const opts *o, bool vocab_only) {
    lm_model_params mp = lm_model_default_params();
    if (o->backend) mp.backend = o->backend;
    mp.n_threads = o->threads;
    mp.vocab_only = vocab_only;
    /* split execution on a GPU backend: the automatic plan for this command's context, or the
       --gpu-layers / --cpu-tensors / --vram overrides */
    lm_context_params plan_ctx = lm_context_default_params();
    if (o->n_ctx) plan_ctx.n_ctx = (uint32_t)o->n_ctx;
    if (o->n_batch) plan_ctx.n_batch = (uint32_t)o->n_batch;
    if (o->parallel) plan_ctx.n_seq_max = (uint32_t)o->parallel;
    plan_ctx.kv_type = o->kv_type;
    plan_ctx.kv_cells = (uint32_t)o->kv_cells;
    plan_ctx.kv_page = (uint32_t)o->kv_page;
    mp.context = &plan_ctx;
    mp.gpu_layers = o->gpu_layers;
    mp.cpu_tensors = o->cpu_tensors;
    mp.gpu_bytes = o->vram;
    if (!o->quiet && isatty(2)) mp.progress = progress;
    lm_model *m;
    double t0 = now();
    if (lm_model_load(o->model, &mp, &m)) die("cannot load model");
    if (!o->quiet) {
        lm_model_info mi;
        lm_model_get_info(m, &mi);
        fprintf(stderr, "lumen: %s '%s' (%d layers, %.2f B params, %.1f MiB) on %s, loaded in %.2f s\n", mi.arch, mi.name,
                mi.n_layer, (double)mi.n_params / 1e9, (double)mi.weight_bytes / (1 << 20), mi.backend, now() - t0);
        if (mi.host_backend)
            fprintf(stderr, "lumen: split: %d of %d layers on %s, %.1f MiB of weights on %s\n", mi.n_gpu_layers, mi.n_layer,
                    mi.backend, (double)mi.host_weight_bytes / (1 << 20), mi.host_backend);
    }
    return m;
}

static lm_context *make_ctx_out(lm_model *m, const opts *o, uint32_t n_outputs, lm_output_kind out) {
    lm_context_params cp = lm_context_default_params();
    cp.output = out;
    if (o->n_ctx) cp.n_ctx = (uint32_t)o->n_ctx;
    if (o->n_batch) cp.n_batch = (uint32_t)o->n_batch;
    cp.n_outputs_max = n_outputs;
    cp.kv_type = o->kv_type;
    cp.kv_cells = (uint32_t)o->kv_cells;
    cp.kv_page = (uint32_t)o->kv_page;
    lm_context *c;
    if (lm_context_create(m, &cp, &c)) die("cannot create context");
    return c;
}

static lm_context *make_ctx(lm_model *m, const opts *o, uint32_t n_outputs) {
    return make_ctx_out(m, o, n_outputs, LM_OUTPUT_LOGITS);
}

/* Greedy without penalties needs no logits on the host: the device finds the token. */
static bool pure_greedy(const lm_sampler_params *sp) {
    return sp->temperature <= 0 && sp->repeat_penalty == 1.0f && sp->presence_penalty == 0 && sp->frequency_penalty == 0;
}

static lm_token *tokenize(lm_model *m, const char *text, bool add_bos, bool special, int32_t *n) {
    int32_t need = 0;
    size_t len = strlen(text);
    lm_status st = lm_tokenize(m, text, len, add_bos, special, NULL, 0, &need);
    if (st && st != LM_STATUS_BUFFER_TOO_SMALL) die("tokenize");
    lm_token *t = malloc((size_t)(need > 0 ? need : 1) * sizeof(lm_token));
    if (!t) die("out of memory");
    if (lm_tokenize(m, text, len, add_bos, special, t, need, n)) die("tokenize");
    return t;
}

static void print_piece(lm_model *m, lm_token t) {
    char buf[512];
    size_t len;
    if (lm_token_to_piece(m, t, false, buf, sizeof buf, &len) == LM_STATUS_OK) fwrite(buf, 1, len, stdout);
    fflush(stdout);
}

/* Decode tokens[0..n) of sequence 0 starting at position pos0, in n_batch chunks; logits for the
 * last token. Returns seconds. */
static double prefill(lm_context *c, const lm_token *toks, int32_t n, int32_t pos0, int32_t n_batch) {
    lm_batch_entry *e = malloc((size_t)n_batch * sizeof *e);
    if (!e) die("out of memory");
    double t0 = now();
    for (int32_t i = 0; i < n; i += n_batch) {
        int32_t k = n - i < n_batch ? n - i : n_batch;
        for (int32_t j = 0; j < k; j++) e[j] = (lm_batch_entry){toks[i + j], pos0 + i + j, 0, i + j == n - 1};
        if (lm_context_decode(c, e, k)) die("decode");
    }
    free(e);
    return now() - t0;
}

static int cmd_run(opts *o) {
    lm_model *m = load(o, false);
    const bool greedy = pure_greedy(&o->sp);
    lm_context *c = make_ctx_out(m, o, 1, greedy ? LM_OUTPUT_ARGMAX : LM_OUTPUT_LOGITS);
    const char *prompt = o->prompt ? o->prompt : "The capital of France is";
    char *templ = NULL;
    if (o->chat) {
        lm_chat_message msg[2];
        size_t nm = 0, len;
        if (o->system) msg[nm++] = (lm_chat_message){"system", o->system};
        msg[nm++] = (lm_chat_message){"user", prompt};
        lm_status st = lm_chat_apply(m, msg, nm, true, o->think, NULL, 0, &len);
        if (st && st != LM_STATUS_BUFFER_TOO_SMALL) die("chat template");
        templ = malloc(len + 1);
        if (!templ || lm_chat_apply(m, msg, nm, true, o->think, templ, len + 1, &len)) die("chat template");
        prompt = templ;
    }
    int32_t n;
    lm_token *toks = tokenize(m, prompt, !o->chat, o->chat, &n);
    if (n == 0) die("empty prompt");
    lm_sampler *s;
    if (lm_sampler_create(&o->sp, lm_vocab_size(m), &s)) die("sampler");
    for (int32_t i = 0; i < n; i++) lm_sampler_accept(s, toks[i]);
    if (!o->no_display_prompt && !o->chat) fputs(o->prompt ? o->prompt : prompt, stdout);
    int32_t n_batch = o->n_batch ? o->n_batch : 512;
    double tp = prefill(c, toks, n, 0, n_batch);
    double td = 0;
    int32_t gen = 0, pos = n;
    const int32_t n_ctx = o->n_ctx ? o->n_ctx : 4096;
    for (; gen < o->n_predict && pos < n_ctx; gen++) {
        lm_token t = greedy ? lm_context_argmax(c, 0) : lm_sampler_sample(s, lm_context_logits(c, 0));
        if (lm_token_is_eog(m, t)) break;
        print_piece(m, t);
        lm_sampler_accept(s, t);
        lm_batch_entry e = {t, pos++, 0, true};
        double t0 = now();
        lm_status st = lm_context_decode(c, &e, 1);
        td += now() - t0;
        if (st == LM_STATUS_CONTEXT_FULL) break;
        if (st) die("decode");
    }
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "prefill: %d tokens in %.3f s (%.2f tok/s)\ndecode: %d tokens in %.3f s (%.2f tok/s)\n", n, tp,
            n / tp, gen, td, gen > 0 ? gen / td : 0.0);
    free(toks);
    free(templ);
    lm_sampler_free(s);
    lm_context_free(c);
    lm_model_free(m);
    return 0;
}

static char *read_line(FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    return line;
}

static int cmd_chat(opts *o) {
    lm_model *m = load(o, false);
    const bool greedy = pure_greedy(&o->sp);
    lm_context *c = make_ctx_out(m, o, 1, greedy ? LM_OUTPUT_ARGMAX : LM_OUTPUT_LOGITS);
    lm_sampler *s;
    if (lm_sampler_create(&o->sp, lm_vocab_size(m), &s)) die("sampler");
    lm_chat_message *msgs = NULL;
    size_t nm = 0, cap = 0;
    char **owned = NULL;
    lm_token *hist = NULL; /* tokens in the KV cache of sequence 0 */
    int32_t n_hist = 0;
    const int32_t n_batch = o->n_batch ? o->n_batch : 512;
    if (o->system) {
        msgs = realloc(msgs, ++cap * sizeof *msgs);
        msgs[nm++] = (lm_chat_message){"system", o->system};
    }
    for (;;) {
        fprintf(stderr, "> ");
        char *line = read_line(stdin);
        if (!line) break;
        if (!*line) {
            free(line);
            continue;
        }
        if (nm + 2 > cap) {
            cap = (nm + 2) * 2;
            msgs = realloc(msgs, cap * sizeof *msgs);
            owned = realloc(owned, cap * sizeof *owned);
        }
        owned = realloc(owned, (nm + 2) * sizeof *owned);
        owned[nm] = line;
        msgs[nm++] = (lm_chat_message){"user", line};
        size_t len;
        lm_status st = lm_chat_apply(m, msgs, nm, true, o->think, NULL, 0, &len);
        if (st && st != LM_STATUS_BUFFER_TOO_SMALL) die("chat template");
        char *text = malloc(len + 1);
        if (!text || lm_chat_apply(m, msgs, nm, true, o->think, text, len + 1, &len)) die("chat template");
        int32_t n;
        lm_token *toks = tokenize(m, text, false, true, &n);
        free(text);
        /* reuse the cached prefix: only the new tokens of this turn are processed. When the
           template renders the history differently from what was generated (a reply that
           tokenizes another way, dropped thinking), the cache is rolled back to the common
           prefix; where the sliding-window layers no longer hold the window before it, to the
           checkpoint taken after the previous turn's prompt (the last reply is processed
           again); only without one is the conversation processed from the start. */
        int32_t common = 0;
        while (common < n_hist && common < n && hist[common] == toks[common]) common++;
        if (common == n) common--; /* need logits for the last prompt token */
        if (common < n_hist) {
            int32_t from = 0;
            if (lm_context_seq_rollback(c, 0, common, &from) != LM_STATUS_OK) {
                lm_context_seq_clear(c, 0);
                from = 0;
            }
            common = from;
        }
        double tp = prefill(c, toks + common, n - common, common, n_batch);
        lm_context_seq_checkpoint(c, 0); /* a failure only costs the next turn time */
        hist = realloc(hist, (size_t)(n + o->n_predict + 1) * sizeof *hist);
        memcpy(hist, toks, (size_t)n * sizeof *hist);
        n_hist = n;
        /* generate */
        size_t acap = 256, alen = 0;
        char *answer = malloc(acap);
        int32_t gen = 0;
        double t0 = now();
        for (; gen < (o->n_predict ? o->n_predict : 1024); gen++) {
            lm_token t = greedy ? lm_context_argmax(c, 0) : lm_sampler_sample(s, lm_context_logits(c, 0));
            if (lm_token_is_eog(m, t)) break;
            char piece[512];
            size_t pl;
            if (lm_token_to_piece(m, t, false, piece, sizeof piece, &pl) == LM_STATUS_OK) {
                fwrite(piece, 1, pl, stdout);
                fflush(stdout);
                if (alen + pl + 1 > acap) {
                    acap = (alen + pl + 1) * 2;
                    answer = realloc(answer, acap);
                }
                memcpy(answer + alen, piece, pl);
                alen += pl;
            }
            lm_batch_entry e = {t, n_hist, 0, true};
            if (lm_context_decode(c, &e, 1)) die("decode");
            hist[n_hist++] = t;
        }
        answer[alen] = 0;
        printf("\n");
        fprintf(stderr, "[%d new prompt tokens (%d cached) in %.2f s, %d tokens at %.2f tok/s]\n", n - common, common, tp,
                gen, gen / (now() - t0 + 1e-9));
        free(toks);
        if (nm + 1 > cap) {
            cap = (nm + 1) * 2;
            msgs = realloc(msgs, cap * sizeof *msgs);
        }
        owned = realloc(owned, (nm + 1) * sizeof *owned);
        owned[nm] = answer;
        msgs[nm++] = (lm_chat_message){"assistant", answer};
    }
    for (size_t i = o->system ? 1 : 0; i < nm; i++) free(owned[i]);
    free(owned);
    free(msgs);
    free(hist);
    lm_sampler_free(s);
    lm_context_free(c);
    lm_model_free(m);
    return 0;
}

static int cmd_info(opts *o) {
    lm_model *m = load(o, false);
    lm_model_info mi;
    lm_model_get_info(m, &mi);
    printf("architecture: %s\nname: %s\nlayers: %d  embedding: %d  heads: %d  vocab: %d  trained context: %d\n", mi.arch,
           mi.name, mi.n_layer, mi.n_embd, mi.n_head, mi.n_vocab, mi.n_ctx_train);
    if (mi.n_expert) printf("experts: %d (%d used per token)\n", mi.n_expert, mi.n_expert_used);
    printf("parameters: %llu (%.3f B)  weights: %.1f MiB\n\nmetadata:\n", (unsigned long long)mi.n_params,
           (double)mi.n_params / 1e9, (double)mi.weight_bytes / (1 << 20));
    char val[512];
    for (int64_t i = 0; i < lm_model_meta_count(m); i++) {
        lm_model_meta_value_str(m, i, val, sizeof val);
        printf("  %-44s %s\n", lm_model_meta_key(m, i), val);
    }
    printf("\ntensors:\n  %-40s %-6s %-28s %12s\n", "name", "type", "shape", "bytes");
    for (int64_t i = 0; i < lm_model_tensor_count(m); i++) {
        lm_tensor_info ti;
        lm_model_tensor_info(m, i, &ti);
        char shape[64];
        int at = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < ti.n_dims; d++) at += snprintf(shape + at, sizeof shape - at, "%s%lld", d ? ", " : "", (long long)ti.ne[d]);
        snprintf(shape + at, sizeof shape - at, "]");
        printf("  %-40s %-6s %-28s %12llu\n", ti.name, ti.type, shape, (unsigned long long)ti.bytes);
    }
    lm_context_params cp = lm_context_default_params();
    if (o->n_ctx) cp.n_ctx = (uint32_t)o->n_ctx;
    if (o->n_batch) cp.n_batch = (uint32_t)o->n_batch;
    cp.kv_type = o->kv_type;
    uint64_t kvb, cb;
    if (lm_model_estimate_memory(m, &cp, &kvb, &cb)) die("estimate");
    printf("\nmemory estimate (ctx %u, batch %u, %s KV): weights %.1f MiB + KV %.1f MiB + activations %.1f MiB + logits "
           "%.1f MiB\n",
           cp.n_ctx ? cp.n_ctx : (uint32_t)(mi.n_ctx_train < 4096 ? mi.n_ctx_train : 4096), cp.n_batch,
           lm_kv_type_name(cp.kv_type), (double)mi.weight_bytes / (1 << 20), (double)kvb / (1 << 20), (double)cb / (1 << 20),
           (double)mi.n_vocab * 4.0 / (1 << 20));
    lm_model_free(m);
    return 0;
}

static int cmd_plan(opts *o) {
    opts q = *o;
    q.quiet = true;
    lm_model *m = load(&q, true); /* the tensor table and metadata are enough */
    lm_plan_params pp = lm_plan_default_params();
    if (o->n_ctx) pp.context.n_ctx = (uint32_t)o->n_ctx;
    if (o->n_batch) pp.context.n_batch = (uint32_t)o->n_batch;
    if (o->parallel) pp.context.n_seq_max = (uint32_t)o->parallel;
    pp.context.kv_type = o->kv_type;
    pp.context.kv_cells = (uint32_t)o->kv_cells;
    pp.context.kv_page = (uint32_t)o->kv_page;
    pp.gpu_bytes = o->vram;
    pp.gpu_backend = o->backend && strcmp(o->backend, "cpu") ? o->backend : NULL;
    if (o->reserve_set) pp.reserve_bytes = o->reserve;
    pp.gpu_bandwidth_gbs = o->gpu_bw;
    pp.cpu_bandwidth_gbs = o->cpu_bw;
    pp.gpu_layers = o->gpu_layers;
    pp.cpu_tensors = o->cpu_tensors;
    lm_plan *pl;
    if (lm_plan_create(m, &pp, &pl)) die("plan");
    size_t len = 0;
    lm_plan_format(pl, NULL, 0, &len);
    char *buf = malloc(len + 1);
    if (!buf) die("out of memory");
    lm_plan_format(pl, buf, len + 1, &len);
    fputs(buf, stdout);
    free(buf);
    lm_plan_summary s;
    lm_plan_get_summary(pl, &s);
    lm_plan_free(pl);
    lm_model_free(m);
    return s.fits_gpu && s.fits_host ? 0 : 3;
}

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "lumen: error: cannot open '%s': %s\n", path, strerror(errno));
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    if (!buf) die("out of memory");
    buf[n] = 0;
    *size = n;
    return buf;
}

/* log-softmax probability of `target` in logits[V] */
static double log_prob(const float *l, int32_t V, int32_t target) {
    double mx = -INFINITY, sum = 0;
    for (int32_t i = 0; i < V; i++) mx = fmax(mx, l[i]);
    for (int32_t i = 0; i < V; i++) sum += exp((double)l[i] - mx);
    return (double)l[target] - mx - log(sum);
}

static int cmd_perplexity(opts *o) {
    if (!o->file) {
        fprintf(stderr, "lumen: error: perplexity needs -f FILE\n");
        return 2;
    }
    size_t size;
    char *text = read_file(o->file, &size);
    lm_model *m = load(o, false);
    const int32_t n_ctx = o->n_ctx ? o->n_ctx : 1024, n_batch = o->n_batch ? o->n_batch : (n_ctx < 512 ? n_ctx : 512);
    opts o2 = *o;
    o2.n_ctx = n_ctx;
    o2.n_batch = n_batch;
    lm_context *c = make_ctx(m, &o2, (uint32_t)n_batch);
    int32_t n;
    lm_token *toks = tokenize(m, text, true, false, &n);
    free(text);
    const int32_t V = lm_vocab_size(m), bos = lm_token_bos(m);
    /* non-overlapping chunks of n_ctx tokens; each chunk starts with BOS when the model adds one
       (as llama.cpp's perplexity does; the tokenizer put it first then) and scores every
       prediction inside it (position i predicts token i + 1) */
    double nll = 0;
    int64_t count = 0;
    lm_token *chunk = malloc((size_t)n_ctx * sizeof *chunk);
    lm_batch_entry *e = malloc((size_t)n_batch * sizeof *e);
    double t0 = now();
    const bool add_bos = n > 0 && bos >= 0 && toks[0] == bos;
    int32_t at = add_bos ? 1 : 0, n_chunks = 0;
    while (at < n) {
        int32_t k = 0;
        if (add_bos) chunk[k++] = bos;
        while (k < n_ctx && at < n) chunk[k++] = toks[at++];
        if (k < 2) break;
        lm_context_seq_clear(c, 0);
        for (int32_t i = 0; i < k; i += n_batch) {
            int32_t b = k - i < n_batch ? k - i : n_batch;
            for (int32_t j = 0; j < b; j++) e[j] = (lm_batch_entry){chunk[i + j], i + j, 0, i + j < k - 1};
            if (lm_context_decode(c, e, b)) die("decode");
            for (int32_t j = 0; j < lm_context_n_outputs(c); j++) {
                nll -= log_prob(lm_context_logits(c, j), V, chunk[i + j + 1]);
                count++;
            }
        }
        n_chunks++;
        fprintf(stderr, "[chunk %d] %d tokens, running perplexity %.4f (%.1f tok/s)\n", n_chunks, k, exp(nll / (double)count),
                (double)count / (now() - t0));
    }
    printf("tokens scored: %lld\nperplexity: %.6f\n", (long long)count, count ? exp(nll / (double)count) : NAN);
    free(chunk);
    free(e);
    free(toks);
    lm_context_free(c);
    lm_model_free(m);
    return 0;
}

static int cmd_logits(opts *o) {
    if (!o->tokens || !o->out) {
        fprintf(stderr, "lumen: error: logits needs --tokens FILE and -o OUT\n");
        return 2;
    }
    size_t size;
    char *text = read_file(o->tokens, &size);
    lm_model *m = load(o, false);
    const int32_t V = lm_vocab_size(m);
    int32_t n = 0, cap = 256;
    lm_token *toks = malloc((size_t)cap * sizeof *toks);
    for (char *p = text, *end; *p;) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= V) {
            fprintf(stderr, "lumen: error: %s: bad token id near '%.20s' (vocabulary has %d tokens)\n", o->tokens, p, V);
            return 1;
        }
        if (n == cap) toks = realloc(toks, (size_t)(cap *= 2) * sizeof *toks);
        toks[n++] = (lm_token)v;
        p = end;
    }
    free(text);
    if (n == 0) {
        fprintf(stderr, "lumen: error: %s holds no token ids\n", o->tokens);
        return 1;
    }
    const int32_t n_batch = o->n_batch ? o->n_batch : 64;
    opts o2 = *o;
    o2.n_ctx = o->n_ctx ? o->n_ctx : n;
    o2.n_batch = n_batch;
    lm_context *c = make_ctx(m, &o2, (uint32_t)n_batch);
    FILE *f = fopen(o->out, "wb");
    if (!f) {
        fprintf(stderr, "lumen: error: cannot write '%s': %s\n", o->out, strerror(errno));
        return 1;
    }
    lm_batch_entry *e = malloc((size_t)n_batch * sizeof *e);
    for (int32_t i = 0; i < n; i += n_batch) {
        int32_t b = n - i < n_batch ? n - i : n_batch;
        for (int32_t j = 0; j < b; j++) e[j] = (lm_batch_entry){toks[i + j], i + j, 0, true};
        if (lm_context_decode(c, e, b)) die("decode");
        for (int32_t j = 0; j < b; j++)
            if (fwrite(lm_context_logits(c, j), sizeof(float), (size_t)V, f) != (size_t)V) die("write");
        if (!o->quiet) fprintf(stderr, "\r%d / %d tokens", i + b, n);
    }
    if (!o->quiet) fprintf(stderr, "\n");
    if (fclose(f) != 0) die("write");
    free(e);
    free(toks);
    lm_context_free(c);
    lm_model_free(m);
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_profile(lm_context *c, const char *test) {
    lm_op_stat st[32];
    int32_t n = lm_context_profile(c, st, 32);
    double total = 0;
    for (int32_t i = 0; i < n && i < 32; i++) total += st[i].seconds;
    printf("\nprofile (%s): %.3f s of device time\n| op | calls | ms | share | GB/s | GFLOP/s |\n|---|---:|---:|---:|---:|---:|\n", test, total);
    for (int32_t i = 0; i < n && i < 32; i++)
        printf("| %s | %llu | %.2f | %.1f%% | %.2f | %.2f |\n", st[i].op, (unsigned long long)st[i].calls, st[i].seconds * 1e3,
               100.0 * st[i].seconds / (total > 0 ? total : 1), st[i].gbytes_per_s, st[i].gflops_per_s);
    printf("(attention bytes and flops count every cell of the context: an upper bound)\n\n");
}

/* llama-bench style: pp = prompt of N random tokens in one batch; tg = N single-token steps. */
static int cmd_bench(opts *o) {
    lm_model *m = load(o, false);
    const int32_t np = o->n_prompt_bench, ng = o->n_gen_bench, reps = o->reps;
    opts o2 = *o;
    o2.n_ctx = o->n_ctx ? o->n_ctx : np + ng + 16;
    o2.n_batch = o->n_batch ? o->n_batch : (np > 0 ? np : 1);
    lm_context *c = make_ctx(m, &o2, 1);
    const int32_t V = lm_vocab_size(m);
    lm_token *toks = malloc((size_t)(np + ng + 1) * sizeof *toks);
    uint64_t r = 42;
    for (int32_t i = 0; i < np + ng + 1; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (lm_token)((r >> 33) % (uint64_t)V);
    }
    toks[0] = lm_token_bos(m);
    double *pp = calloc((size_t)reps, sizeof(double)), *tg = calloc((size_t)reps, sizeof(double));
    for (int rep = -1; rep < reps; rep++) { /* rep -1 = warm-up */
        const bool prof = o->profile && rep == reps - 1;
        lm_context_seq_clear(c, 0);
        if (np > 0) {
            if (prof) lm_context_set_profiling(c, true);
            double t = prefill(c, toks, np, 0, o2.n_batch);
            if (rep >= 0) pp[rep] = np / t;
            if (prof) print_profile(c, "pp");
        }
        lm_context_seq_clear(c, 0);
        if (prof) lm_context_set_profiling(c, true);
        double t0 = now();
        for (int32_t i = 0; i < ng; i++) {
            lm_batch_entry e = {toks[i], i, 0, true};
            if (lm_context_decode(c, &e, 1)) die("decode");
        }
        if (rep >= 0 && ng > 0) tg[rep] = ng / (now() - t0);
        if (prof && ng > 0) print_profile(c, "tg");
        if (prof) lm_context_set_profiling(c, false);
    }
    qsort(pp, (size_t)reps, sizeof(double), cmp_d);
    qsort(tg, (size_t)reps, sizeof(double), cmp_d);
    printf("| model | backend | threads | test | tok/s (median of %d) | min | max |\n|---|---|---|---|---|---|---|\n", reps);
    lm_model_info mi;
    lm_model_get_info(m, &mi);
    if (np > 0)
        printf("| %s | %s | %d | pp%d | %.2f | %.2f | %.2f |\n", mi.name, mi.backend, o->threads, np, pp[reps / 2], pp[0],
               pp[reps - 1]);
    if (ng > 0)
        printf("| %s | %s | %d | tg%d | %.2f | %.2f | %.2f |\n", mi.name, mi.backend, o->threads, ng, tg[reps / 2], tg[0],
               tg[reps - 1]);
    free(pp);
    free(tg);
    free(toks);
    lm_context_free(c);
    lm_model_free(m);
    return 0;
}

static void quant_progress(float f, void *user) {
    int *last = user;
    const int pct = (int)(100.0f * f);
    if (pct != *last) fprintf(stderr, "\rquantizing: %3d %%", pct);
    *last = pct;
}

static int cmd_quantize(opts *o) {
    if (!o->model || !o->out) {
        fprintf(stderr, "lumen: error: quantize needs -m MODEL and -o OUT\n");
        return 2;
    }
    lm_quantize_params qp = lm_quantize_default_params();
    if (o->qtype) qp.type = o->qtype;
    qp.per_channel = o->per_channel;
    qp.requantize = o->requantize;
    int last = -1;
    if (!o->quiet) qp.progress = quant_progress, qp.progress_user = &last;
    const double t0 = now();
    if (lm_model_quantize(o->model, o->out, &qp)) {
        fprintf(stderr, "\n");
        die("quantize");
    }
    fprintf(stderr, "\n%s: written as %s%s in %.1f s\n", o->out, qp.type, qp.per_channel ? " (per-channel)" : "", now() - t0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    opts o = {.n_predict = 128, .reps = 3, .n_prompt_bench = 512, .n_gen_bench = 128, .kv_type = LM_KV_F16, .gpu_layers = -1};
    o.sp = lm_sampler_default_params();
    o.threads = 0;
    parse(argc - 1, argv + 1, &o);
    if (!strcmp(cmd, "bench")) {
        if (o.prompt) o.n_prompt_bench = (int)num(o.prompt, "-p", 0, 1 << 20);
        o.n_gen_bench = o.n_predict;
    }
    if (!strcmp(cmd, "run")) return cmd_run(&o);
    if (!strcmp(cmd, "chat")) return cmd_chat(&o);
    if (!strcmp(cmd, "info")) return cmd_info(&o);
    if (!strcmp(cmd, "perplexity")) return cmd_perplexity(&o);
    if (!strcmp(cmd, "logits")) return cmd_logits(&o);
    if (!strcmp(cmd, "bench")) return cmd_bench(&o);
    if (!strcmp(cmd, "quantize")) return cmd_quantize(&o);
    if (!strcmp(cmd, "plan")) return cmd_plan(&o);
    fprintf(stderr, "lumen: error: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
