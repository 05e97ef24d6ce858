/*
 * vk_internal.h — the Vulkan compute backend's internals.
 *
 * Binding model: every buffer is allocated with a device address (buffer device address, core
 * in Vulkan 1.2/1.3) and shaders reach tensors through 64-bit pointers passed in push constants
 * (GL_EXT_buffer_reference). There are no descriptor sets: one pipeline layout with a 128-byte
 * push-constant range serves every shader, and a tensor larger than maxStorageBufferRange needs
 * no splitting because pointers are not bound through descriptors.
 *
 * Execution: begin() opens the step's command buffer; run(node) records bind-pipeline, push
 * constants, dispatch and a memory barrier; submit() ends and submits it with a fence; sync()
 * waits. Nothing in a step waits on the host. With profiling on, a timestamp pair brackets every
 * dispatch and the per-op device time is accumulated at sync().
 */
#ifndef LM_VK_INTERNAL_H
#define LM_VK_INTERNAL_H

#include "backend.h"
#include "ops.h"

#include <vulkan/vulkan.h>

/* Generated at build time from shaders/ (one entry per compiled variant). */
typedef struct lm_vk_shader {
    const char *name;
    const uint32_t *code;
    size_t size; /* bytes */
} lm_vk_shader;
extern const lm_vk_shader lm_vk_shaders[];
extern const int lm_vk_shader_count;

typedef struct vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceAddress addr;
    void *mapped; /* persistently mapped when the memory is host-visible and coherent */
    size_t size;
} vk_buf;

#define VK_MAX_QUERIES 8192

typedef struct vk_features {
    bool fp16;         /* shaderFloat16 */
    bool int8;         /* shaderInt8 */
    bool subgroup_arith;
    uint32_t subgroup_size;
    bool int_dot;      /* shaderIntegerDotProduct */
    bool coopmat;      /* VK_KHR_cooperative_matrix */
} vk_features;

#define VK_RING_SLOTS 2
#define VK_RING_CHUNK (32u << 20)

typedef struct vk_ctx {
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice phys;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memprops;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    vk_features feat;
    uint32_t mem_device;   /* memory type for buffers */
    bool mem_device_host_visible;
    uint32_t mem_host;     /* host-visible coherent type for staging */
    uint64_t max_alloc;

    VkPipelineLayout layout;
    VkPipelineCache cache;
    VkPipeline *pipes; /* [lm_vk_shader_count], created on first use */

    VkCommandPool pool;
    VkCommandBuffer cmd;  /* the step */
    VkFence fence;
    bool recording;

    /* staging ring for host <-> device-local transfers: while the device copies one slot the
       host fills (or drains) the other */
    struct {
        vk_buf buf;
        VkCommandBuffer cmd;
        VkFence fence;
        bool busy;
    } ring[VK_RING_SLOTS];

    vk_buf args;         /* host-visible argument blocks of one step (ops with > 128 bytes of args) */
    size_t args_used;
    vk_buf scratch;      /* device scratch of one step (attention split partials) */
    size_t scratch_used;
    vk_buf garbage[8];   /* outgrown scratch buffers still referenced by the recording step */
    int n_garbage;
    struct {
        lm_rope_params rp;
        const lm_buffer *fbuf; /* frequency factors tensor (buffer, offset) or NULL */
        size_t foffs;
        vk_buf buf;      /* per frequency: turns per position, 64-bit fixed point, host-visible */
    } ftab[32];
    int n_ftab;

    VkQueryPool qpool;
    uint32_t n_queries;
    lm_op query_op[VK_MAX_QUERIES / 2];
    double query_bytes[VK_MAX_QUERIES / 2], query_flops[VK_MAX_QUERIES / 2];
} vk_ctx;

/* shader lookup by name; -1 if absent */
int lm_vk_shader_find(const char *name);
/* the pipeline of a shader, created (and cached) on first use; VK_NULL_HANDLE on failure */
VkPipeline lm_vk_pipeline(lm_backend *be, int shader);
/* device address of a tensor's element 0 */
static inline VkDeviceAddress lm_vk_addr(const lm_tensor *t) {
    return ((const vk_buf *)t->buf->impl)->addr + t->offs;
}
/* record one dispatch of `shader` with push constants (<= 128 bytes) over a grid of groups,
 * followed by a compute->compute memory barrier */
void lm_vk_dispatch(lm_backend *be, const lm_node *n, int shader, const void *pc, size_t pc_size, uint32_t gx,
                    uint32_t gy, uint32_t gz);

/* Per-step memory for a dispatch: an argument block (copied now, read by the shader), device
 * scratch, and the frequency table of a rope configuration (cached across steps). 0 on failure
 * (latched into the backend). */
VkDeviceAddress lm_vk_args(lm_backend *be, const void *data, size_t size);
VkDeviceAddress lm_vk_scratch(lm_backend *be, size_t size);
VkDeviceAddress lm_vk_freqs(lm_backend *be, const lm_rope_params *rp, const lm_tensor *factors);

/* ops.c */
bool lm_vk_supports(lm_backend *be, const lm_node *n);
void lm_vk_run(lm_backend *be, const lm_node *n);

/* validation messages seen since start (tests fail on any) */
int lm_vk_validation_messages(void);

#endif /* LM_VK_INTERNAL_H */
