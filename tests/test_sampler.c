/*
 * test_sampler.c — sampling: greedy, seeded determinism, the sampled distribution against the
 * softmax it should follow, top-k / top-p / min-p truncation, the three penalties, bad params.
 */
#include "lumen.h"
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

static lm_sampler *make(lm_sampler_params p, int32_t V) {
    lm_sampler *s;
    cr_assert_eq(lm_sampler_create(&p, V, &s), LM_STATUS_OK, "%s", lm_last_error());
    return s;
}

static lm_sampler_params plain(float temp) {
    lm_sampler_params p = lm_sampler_default_params();
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1234;
    return p;
}

Test(sampler, greedy_is_argmax_first_on_ties) {
    float l[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, NAN};
    lm_sampler *s = make(plain(0.0f), 6);
    cr_assert_eq(lm_sampler_sample(s, l), 1);
    lm_sampler_free(s);
}

Test(sampler, seeded_runs_repeat) {
    float l[50];
    tu_rng r = tu_seed(3);
    tu_fill_normal(&r, l, 50, 1.0f);
    lm_sampler *a = make(plain(1.0f), 50), *b = make(plain(1.0f), 50);
    int32_t first[64];
    for (int i = 0; i < 64; i++) {
        first[i] = lm_sampler_sample(a, l);
        cr_assert_eq(first[i], lm_sampler_sample(b, l));
    }
    lm_sampler_reset(a);
    for (int i = 0; i < 64; i++) cr_assert_eq(first[i], lm_sampler_sample(a, l));
    lm_sampler_free(a);
    lm_sampler_free(b);
}

Test(sampler, follows_softmax_at_temperature) {
    const float l[5] = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f};
    const float temp = 0.7f;
    double p[5], z = 0;
    for (int i = 0; i < 5; i++) z += p[i] = exp(l[i] / temp);
    for (int i = 0; i < 5; i++) p[i] /= z;
    lm_sampler *s = make(plain(temp), 5);
    int cnt[5] = {0};
    const int N = 40000;
    for (int i = 0; i < N; i++) cnt[lm_sampler_sample(s, l)]++;
    for (int i = 0; i < 5; i++) {
        double f = (double)cnt[i] / N, sd = sqrt(p[i] * (1 - p[i]) / N);
        cr_assert(fabs(f - p[i]) < 5 * sd + 1e-3, "token %d: frequency %.4f vs probability %.4f", i, f, p[i]);
    }
    lm_sampler_free(s);
}

Test(sampler, top_k_top_p_min_p_truncate) {
    /* probabilities at temperature 1: 0.5, 0.3, 0.15, 0.05 */
    const float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    lm_sampler_params p = plain(1.0f);
    p.top_k = 1;
    lm_sampler *s = make(p, 4);
    for (int i = 0; i < 200; i++) cr_assert_eq(lm_sampler_sample(s, l), 0);
    lm_sampler_free(s);
    p = plain(1.0f);
    p.top_p = 0.75f;
    s = make(p, 4);
    int seen[4] = {0};
    for (int i = 0; i < 2000; i++) seen[lm_sampler_sample(s, l)]++;
    cr_assert(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0, "top-p 0.75 keeps two tokens");
    lm_sampler_free(s);
    p = plain(1.0f);
    p.min_p = 0.5f; /* keep p >= 0.25 */
    s = make(p, 4);
    int seen2[4] = {0};
    for (int i = 0; i < 2000; i++) seen2[lm_sampler_sample(s, l)]++;
    cr_assert(seen2[0] > 0 && seen2[1] > 0 && seen2[2] == 0 && seen2[3] == 0, "min-p 0.5 keeps two tokens");
    lm_sampler_free(s);
}

Test(sampler, penalties_move_greedy_choice) {
    const float l[3] = {2.0f, 1.5f, -1.0f};
    lm_sampler_params p = plain(0.0f);
    p.repeat_penalty = 1.5f; /* 2.0 / 1.5 = 1.33 < 1.5 */
    lm_sampler *s = make(p, 3);
    cr_assert_eq(lm_sampler_sample(s, l), 0);
    lm_sampler_accept(s, 0);
    cr_assert_eq(lm_sampler_sample(s, l), 1);
    lm_sampler_free(s);
    p = plain(0.0f);
    p.presence_penalty = 0.6f;
    s = make(p, 3);
    lm_sampler_accept(s, 0);
    cr_assert_eq(lm_sampler_sample(s, l), 1);
    lm_sampler_free(s);
    p = plain(0.0f);
    p.frequency_penalty = 0.3f; /* two occurrences: 2.0 - 0.6 = 1.4 < 1.5 */
    s = make(p, 3);
    lm_sampler_accept(s, 0);
    cr_assert_eq(lm_sampler_sample(s, l), 0);
    lm_sampler_accept(s, 0);
    cr_assert_eq(lm_sampler_sample(s, l), 1);
    lm_sampler_free(s);
    /* the window forgets: last_n = 1 */
    p = plain(0.0f);
    p.repeat_penalty = 1.5f;
    p.penalty_last_n = 1;
    s = make(p, 3);
    lm_sampler_accept(s, 0);
    lm_sampler_accept(s, 2);
    cr_assert_eq(lm_sampler_sample(s, l), 0);
    lm_sampler_free(s);
}

Test(sampler, bad_params_are_rejected) {
    lm_sampler *s = NULL;
    lm_sampler_params p = plain(-1.0f);
    cr_assert_eq(lm_sampler_create(&p, 10, &s), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_str_neq(lm_last_error(), "");
    p = plain(1.0f);
    p.top_p = 0.0f;
    cr_assert_eq(lm_sampler_create(&p, 10, &s), LM_STATUS_INVALID_ARGUMENT);
    p = plain(1.0f);
    cr_assert_eq(lm_sampler_create(&p, 0, &s), LM_STATUS_INVALID_ARGUMENT);
    cr_assert_null(s);
    float l[3] = {NAN, -INFINITY, -INFINITY};
    s = make(plain(1.0f), 3);
    int32_t t = lm_sampler_sample(s, l);
    cr_assert(t >= 0 && t < 3);
    lm_sampler_free(s);
}
