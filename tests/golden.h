/*
 * golden.h — HF golden-logit fixtures (tests/fixtures/hf, written by tools/gen_hf_fixtures.py)
 * and the runners that feed them to a model on any backend and compare the logits.
 */
#ifndef LM_TEST_GOLDEN_H
#define LM_TEST_GOLDEN_H

#include "lumen.h"

#include <stdint.h>

#define TOL 1e-4

typedef struct golden {
    uint32_t n_vocab, n_seq;
    uint32_t n_tok[8];
    int32_t *tok[8];
    float *logits[8];
    void *blob;
} golden;

void load_golden(const char *name, golden *g);
lm_model *load_model(const char *name, const char *backend);
/* feed every sequence in chunks of `chunk` tokens; compare all logits; returns the worst
 * max|d|/max|ref| (and expects each sequence <= TOL) */
double run_chunks(const char *name, lm_model *m, const golden *g, uint32_t chunk);
/* all sequences interleaved in one batch, each with its own sequence id */
double run_interleaved(const char *name, lm_model *m, const golden *g);

#endif
