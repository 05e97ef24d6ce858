/*
 * backend_vk.c — the Vulkan device (see vk_internal.h): instance and device selection (a discrete
 * GPU before an integrated one before a CPU implementation such as lavapipe; LUMEN_VK_DEVICE=N
 * chooses), feature probing, buffers with device addresses, staged and mapped transfers,
 * pipelines with an on-disk pipeline cache, the per-step command buffer, timestamp profiling and
 * the Khronos validation layer (LUMEN_VK_VALIDATION=1) whose messages are counted.
 */
#define _GNU_SOURCE
#include "vk_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static _Atomic int validation_messages;
static _Atomic int validation_instances; /* instances created with the validation layer enabled */

int lm_vk_validation_messages(void) { return atomic_load(&validation_messages); }
int lm_vk_validation_instances(void) { return atomic_load(&validation_instances); }

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev, VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)type;
    (void)user;
    if (sev >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        atomic_fetch_add(&validation_messages, 1);
        fprintf(stderr, "lumen vulkan validation: %s\n", data->pMessage);
    }
    return VK_FALSE;
}

#define VKF(expr, what)                                                                            \
    do {                                                                                           \
        VkResult r_ = (expr);                                                                      \
        if (r_ != VK_SUCCESS) {                                                                    \
            st = lm_fail(r_ == VK_ERROR_OUT_OF_DEVICE_MEMORY || r_ == VK_ERROR_OUT_OF_HOST_MEMORY   \
                             ? LM_STATUS_OUT_OF_MEMORY                                             \
                             : LM_STATUS_BACKEND,                                                  \
                         "vulkan: %s failed (VkResult %d)", what, (int)r_);                        \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static bool validation_wanted(void) {
    const char *v = getenv("LUMEN_VK_VALIDATION");
    return v && *v && strcmp(v, "0") != 0;
}

static bool has_layer(const char *name) {
    uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, NULL);
    VkLayerProperties *p = calloc(n ? n : 1, sizeof *p);
    if (!p) return false;
    vkEnumerateInstanceLayerProperties(&n, p);
    bool found = false;
    for (uint32_t i = 0; i < n && !found; i++) found = strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

static int device_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

/* physical devices in preference order */
static uint32_t sorted_devices(VkInstance inst, VkPhysicalDevice *out, uint32_t cap) {
    uint32_t n = 0;
    if (vkEnumeratePhysicalDevices(inst, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkPhysicalDevice *all = calloc(n, sizeof *all);
    if (!all) return 0;
    vkEnumeratePhysicalDevices(inst, &n, all);
    uint32_t k = 0;
    for (int rank = 0; rank <= 4; rank++)
        for (uint32_t i = 0; i < n && k < cap; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(all[i], &p);
            if (device_rank(p.deviceType) == rank && p.apiVersion >= VK_API_VERSION_1_2) out[k++] = all[i];
        }
    free(all);
    return k;
}

static VkInstance make_instance(bool validation, VkDebugUtilsMessengerEXT *messenger) {
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "lumen",
                             .pEngineName = "lumen", .apiVersion = VK_API_VERSION_1_2};
    const char *layers[1] = {"VK_LAYER_KHRONOS_validation"};
    const char *exts[1] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    const bool val = validation && has_layer(layers[0]);
    if (validation && !val) fprintf(stderr, "lumen vulkan: LUMEN_VK_VALIDATION set but the validation layer is not installed\n");
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app,
                               .enabledLayerCount = val ? 1 : 0, .ppEnabledLayerNames = layers,
                               .enabledExtensionCount = val ? 1 : 0, .ppEnabledExtensionNames = exts};
    VkInstance inst = VK_NULL_HANDLE;
    if (vkCreateInstance(&ci, NULL, &inst) != VK_SUCCESS) return VK_NULL_HANDLE;
    *messenger = VK_NULL_HANDLE;
    if (val) {
        atomic_fetch_add(&validation_instances, 1);
        PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(inst, "vkCreateDebugUtilsMessengerEXT");
        VkDebugUtilsMessengerCreateInfoEXT mi = {
            .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
            .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
            .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
            .pfnUserCallback = on_message};
        if (create) create(inst, &mi, NULL, messenger);
    }
    return inst;
}

static int vk_device_count(void) {
    VkDebugUtilsMessengerEXT m;
    VkInstance inst = make_instance(false, &m);
    if (!inst) return 0;
    VkPhysicalDevice devs[16];
    uint32_t n = sorted_devices(inst, devs, 16);
    vkDestroyInstance(inst, NULL);
    return (int)n;
}

static int find_memory(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mp->memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

static void vk_destroy(lm_backend *be);

static lm_status vk_create(const lm_backend_config *cfg, lm_backend **out) {
    extern const lm_backend_ops lm_vk_backend_ops;
    lm_status st = LM_STATUS_OK;
    lm_backend *be = calloc(1, sizeof *be);
    vk_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "vulkan: out of memory");
    }
    be->ops = &lm_vk_backend_ops;
    be->impl = c;
    c->inst = make_instance(validation_wanted(), &c->messenger);
    if (!c->inst) {
        st = lm_fail(LM_STATUS_BACKEND, "vulkan: cannot create an instance (is a Vulkan driver installed?)");
        goto fail;
    }
    VkPhysicalDevice devs[16];
    uint32_t nd = sorted_devices(c->inst, devs, 16);
    int want = cfg->device;
    const char *env = getenv("LUMEN_VK_DEVICE");
    if (env && *env) want = atoi(env);
    if (nd == 0 || want < 0 || (uint32_t)want >= nd) {
        st = lm_fail(LM_STATUS_NOT_FOUND, "vulkan: no device %d (%u Vulkan 1.2+ devices found)", want, nd);
        goto fail;
    }
    c->phys = devs[want];
    vkGetPhysicalDeviceProperties(c->phys, &c->props);
    vkGetPhysicalDeviceMemoryProperties(c->phys, &c->memprops);

    /* features: what lumen needs, and what it can use */
    VkPhysicalDeviceShaderIntegerDotProductFeatures dotf = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, .pNext = NULL};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    if (c->props.apiVersion >= VK_API_VERSION_1_3) f12.pNext = &dotf;
    vkGetPhysicalDeviceFeatures2(c->phys, &f2);
    if (!f12.bufferDeviceAddress || !f11.storageBuffer16BitAccess || !f2.features.shaderInt64 || !f2.features.shaderInt16) {
        st = lm_fail(LM_STATUS_UNSUPPORTED,
                     "vulkan: %s lacks a required feature (bufferDeviceAddress %d, storageBuffer16BitAccess %d, shaderInt64 %d, "
                     "shaderInt16 %d)",
                     c->props.deviceName, f12.bufferDeviceAddress, f11.storageBuffer16BitAccess, f2.features.shaderInt64,
                     f2.features.shaderInt16);
        goto fail;
    }
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    vkGetPhysicalDeviceProperties2(c->phys, &p2);
    c->feat.fp16 = f12.shaderFloat16;
    c->feat.int8 = f12.shaderInt8;
    c->feat.subgroup_size = sg.subgroupSize;
    c->feat.subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                             (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) && sg.subgroupSize >= 4;
    {
        /* LUMEN_VK_NO_SUBGROUP=1 takes the plain (shared-memory) kernels a device without subgroup
           arithmetic gets: for testing them on devices that have it */
        const char *ns = getenv("LUMEN_VK_NO_SUBGROUP");
        if (ns && ns[0] == '1') c->feat.subgroup_arith = false;
    }
    c->feat.int_dot = dotf.shaderIntegerDotProduct;
    {
        uint32_t ne = 0;
        vkEnumerateDeviceExtensionProperties(c->phys, NULL, &ne, NULL);
        VkExtensionProperties *ext = calloc(ne ? ne : 1, sizeof *ext);
        if (ext) {
            vkEnumerateDeviceExtensionProperties(c->phys, NULL, &ne, ext);
            for (uint32_t i = 0; i < ne; i++)
                if (!strcmp(ext[i].extensionName, "VK_KHR_cooperative_matrix")) c->feat.coopmat = true;
            free(ext);
        }
    }

    /* a compute queue */
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &nq, NULL);
    VkQueueFamilyProperties qp[32];
    if (nq > 32) nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &nq, qp);
    c->qfam = UINT32_MAX;
    for (uint32_t i = 0; i < nq && c->qfam == UINT32_MAX; i++)
        if ((qp[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && qp[i].timestampValidBits > 0) c->qfam = i;
    for (uint32_t i = 0; i < nq && c->qfam == UINT32_MAX; i++)
        if (qp[i].queueFlags & VK_QUEUE_COMPUTE_BIT) c->qfam = i;
    if (c->qfam == UINT32_MAX) {
        st = lm_fail(LM_STATUS_UNSUPPORTED, "vulkan: %s has no compute queue", c->props.deviceName);
        goto fail;
    }
    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = c->qfam,
                                   .queueCount = 1, .pQueuePriorities = &prio};
    VkPhysicalDeviceVulkan12Features e12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .bufferDeviceAddress = VK_TRUE, .shaderFloat16 = f12.shaderFloat16,
                                            .shaderInt8 = f12.shaderInt8, .storageBuffer8BitAccess = f12.storageBuffer8BitAccess};
    VkPhysicalDeviceVulkan11Features e11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &e12,
                                            .storageBuffer16BitAccess = VK_TRUE};
    VkPhysicalDeviceFeatures2 e2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &e11};
    e2.features.shaderInt64 = VK_TRUE;
    e2.features.shaderInt16 = VK_TRUE;
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &e2, .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci};
    VKF(vkCreateDevice(c->phys, &dci, NULL, &c->dev), "vkCreateDevice");
    vkGetDeviceQueue(c->dev, c->qfam, 0, &c->queue);

    /* memory types: device-local for buffers (host-visible too on UMA / lavapipe / ReBAR),
       host-visible coherent for staging */
    VkBufferCreateInfo probe = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 4096,
                                .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT |
                                         VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT};
    VkBuffer pb;
    VKF(vkCreateBuffer(c->dev, &probe, NULL, &pb), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, pb, &req);
    vkDestroyBuffer(c->dev, pb, NULL);
    int md = find_memory(&c->memprops, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    int mh = find_memory(&c->memprops, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (md < 0) md = mh;
    if (md < 0 || mh < 0) {
        st = lm_fail(LM_STATUS_UNSUPPORTED, "vulkan: no usable memory types on %s", c->props.deviceName);
        goto fail;
    }
    c->mem_device = (uint32_t)md;
    c->mem_host = (uint32_t)mh;
    const VkMemoryPropertyFlags dflags = c->memprops.memoryTypes[md].propertyFlags;
    c->mem_device_host_visible = (dflags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (dflags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    {
        /* LUMEN_VK_STAGED=1: never map device buffers, move everything through the staging ring
           (what a discrete GPU without ReBAR does): for testing the ring on UMA devices */
        const char *sv = getenv("LUMEN_VK_STAGED");
        if (sv && sv[0] == '1') c->mem_device_host_visible = false;
    }
    {
        VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
        VkPhysicalDeviceProperties2 q2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
        vkGetPhysicalDeviceProperties2(c->phys, &q2);
        c->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : (1ull << 30);
        if (c->max_alloc > (4ull << 30)) c->max_alloc = 4ull << 30;
    }

    /* one layout for every shader: push constants only */
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 128};
    VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pcr};
    VKF(vkCreatePipelineLayout(c->dev, &lci, NULL, &c->layout), "vkCreatePipelineLayout");
    {
        /* pipeline cache persisted next to the model cache */
        char path[4096];
        const char *home = getenv("HOME");
        void *data = NULL;
        size_t size = 0;
        snprintf(path, sizeof path, "%s/.cache/lumen/vk_pipeline_cache_%08x_%08x.bin", home ? home : "/tmp",
                 c->props.vendorID, c->props.deviceID);
        FILE *f = fopen(path, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            if (n > 0 && n < (64l << 20) && (data = malloc((size_t)n)) && fread(data, 1, (size_t)n, f) == (size_t)n) size = (size_t)n;
            fclose(f);
        }
        VkPipelineCacheCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO, .initialDataSize = size,
                                         .pInitialData = size ? data : NULL};
        if (vkCreatePipelineCache(c->dev, &pci, NULL, &c->cache) != VK_SUCCESS) {
            pci.initialDataSize = 0; /* a stale or foreign cache file: start empty */
            pci.pInitialData = NULL;
            VKF(vkCreatePipelineCache(c->dev, &pci, NULL, &c->cache), "vkCreatePipelineCache");
        }
        free(data);
    }
    c->pipes = calloc((size_t)lm_vk_shader_count + 1, sizeof(VkPipeline));
    if (!c->pipes) {
        st = lm_fail(LM_STATUS_OUT_OF_MEMORY, "vulkan: out of memory");
        goto fail;
    }
    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, .queueFamilyIndex = c->qfam};
    VKF(vkCreateCommandPool(c->dev, &cpi, NULL, &c->pool), "vkCreateCommandPool");
    VkCommandBuffer cbs[1 + VK_RING_SLOTS];
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = c->pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1 + VK_RING_SLOTS};
    VKF(vkAllocateCommandBuffers(c->dev, &cai, cbs), "vkAllocateCommandBuffers");
    c->cmd = cbs[0];
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VKF(vkCreateFence(c->dev, &fci, NULL, &c->fence), "vkCreateFence");
    for (int i = 0; i < VK_RING_SLOTS; i++) {
        c->ring[i].cmd = cbs[1 + i];
        VKF(vkCreateFence(c->dev, &fci, NULL, &c->ring[i].fence), "vkCreateFence");
    }
    VkQueryPoolCreateInfo qpi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO, .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                 .queryCount = VK_MAX_QUERIES};
    if (c->props.limits.timestampComputeAndGraphics) VKF(vkCreateQueryPool(c->dev, &qpi, NULL, &c->qpool), "vkCreateQueryPool");
    *out = be;
    return LM_STATUS_OK;
fail:
    vk_destroy(be);
    return st;
}

static void buf_destroy(vk_ctx *c, vk_buf *b) {
    if (!b) return;
    if (b->mapped) vkUnmapMemory(c->dev, b->mem);
    if (b->buf) vkDestroyBuffer(c->dev, b->buf, NULL);
    if (b->mem) vkFreeMemory(c->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

static lm_status buf_create(vk_ctx *c, size_t size, uint32_t mem_type, bool map, vk_buf *b) {
    lm_status st = LM_STATUS_OK;
    memset(b, 0, sizeof *b);
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size ? size : 256,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VKF(vkCreateBuffer(c->dev, &bci, NULL, &b->buf), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, b->buf, &req);
    VkMemoryAllocateFlagsInfo fl = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO, .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT};
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &fl, .allocationSize = req.size,
                                .memoryTypeIndex = mem_type};
    VKF(vkAllocateMemory(c->dev, &mai, NULL, &b->mem), "vkAllocateMemory");
    VKF(vkBindBufferMemory(c->dev, b->buf, b->mem, 0), "vkBindBufferMemory");
    VkBufferDeviceAddressInfo ai = {.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO, .buffer = b->buf};
    b->addr = vkGetBufferDeviceAddress(c->dev, &ai);
    if (map) VKF(vkMapMemory(c->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->mapped), "vkMapMemory");
    b->size = size;
    return LM_STATUS_OK;
fail:
    buf_destroy(c, b);
    return st;
}

static void vk_destroy(lm_backend *be) {
    if (!be) return;
    vk_ctx *c = be->impl;
    if (c) {
        if (c->dev) {
            vkDeviceWaitIdle(c->dev);
            if (c->cache) {
                /* save the pipeline cache for the next run */
                size_t size = 0;
                if (vkGetPipelineCacheData(c->dev, c->cache, &size, NULL) == VK_SUCCESS && size > 0) {
                    void *data = malloc(size);
                    if (data && vkGetPipelineCacheData(c->dev, c->cache, &size, data) == VK_SUCCESS) {
                        char dir[4096], path[4200];
                        const char *home = getenv("HOME");
                        snprintf(dir, sizeof dir, "%s/.cache/lumen", home ? home : "/tmp");
                        mkdir(dir, 0755);
                        snprintf(path, sizeof path, "%s/vk_pipeline_cache_%08x_%08x.bin", dir, c->props.vendorID,
                                 c->props.deviceID);
                        FILE *f = fopen(path, "wb");
                        if (f) {
                            fwrite(data, 1, size, f);
                            fclose(f);
                        }
                    }
                    free(data);
                }
                vkDestroyPipelineCache(c->dev, c->cache, NULL);
            }
            if (c->pipes)
                for (int i = 0; i < lm_vk_shader_count; i++)
                    if (c->pipes[i]) vkDestroyPipeline(c->dev, c->pipes[i], NULL);
            for (int i = 0; i < VK_RING_SLOTS; i++) {
                buf_destroy(c, &c->ring[i].buf);
                if (c->ring[i].fence) vkDestroyFence(c->dev, c->ring[i].fence, NULL);
            }
            buf_destroy(c, &c->args);
            buf_destroy(c, &c->scratch);
            for (int i = 0; i < c->n_garbage; i++) buf_destroy(c, &c->garbage[i]);
            for (int i = 0; i < c->n_ftab; i++) buf_destroy(c, &c->ftab[i].buf);
            if (c->qpool) vkDestroyQueryPool(c->dev, c->qpool, NULL);
            if (c->fence) vkDestroyFence(c->dev, c->fence, NULL);
            if (c->pool) vkDestroyCommandPool(c->dev, c->pool, NULL);
            if (c->layout) vkDestroyPipelineLayout(c->dev, c->layout, NULL);
            vkDestroyDevice(c->dev, NULL);
        }
        if (c->messenger) {
            PFN_vkDestroyDebugUtilsMessengerEXT destroy =
                (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(c->inst, "vkDestroyDebugUtilsMessengerEXT");
            if (destroy) destroy(c->inst, c->messenger, NULL);
        }
        if (c->inst) vkDestroyInstance(c->inst, NULL);
        free(c->pipes);
        free(c);
    }
    free(be);
}

static lm_status vk_device_info(lm_backend *be, lm_device_info *out) {
    vk_ctx *c = be->impl;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%.80s (Vulkan %u.%u, subgroup %u%s%s)", c->props.deviceName,
             VK_API_VERSION_MAJOR(c->props.apiVersion), VK_API_VERSION_MINOR(c->props.apiVersion), c->feat.subgroup_size,
             c->feat.fp16 ? ", fp16" : "", c->feat.coopmat ? ", coopmat" : "");
    for (uint32_t i = 0; i < c->memprops.memoryHeapCount; i++)
        if (c->memprops.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) out->memory_total += c->memprops.memoryHeaps[i].size;
    out->memory_free = out->memory_total;
    out->unified_memory = false; /* weights are always uploaded into device buffers */
    out->is_cpu = c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    out->max_alloc = c->max_alloc;
    return LM_STATUS_OK;
}

static lm_status vk_buffer_alloc(lm_backend *be, size_t size, int usage, lm_buffer **out) {
    vk_ctx *c = be->impl;
    if (size > c->max_alloc)
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "vulkan: a %zu-byte buffer exceeds the device's largest allocation (%llu)",
                       size, (unsigned long long)c->max_alloc);
    lm_buffer *b = calloc(1, sizeof *b);
    vk_buf *vb = calloc(1, sizeof *vb);
    if (!b || !vb) {
        free(b);
        free(vb);
        return lm_fail(LM_STATUS_OUT_OF_MEMORY, "vulkan: out of memory");
    }
    lm_status st = buf_create(c, size, c->mem_device, c->mem_device_host_visible, vb);
    if (st) {
        free(b);
        free(vb);
        return st;
    }
    b->be = be;
    b->size = size;
    b->impl = vb;
    b->usage = usage;
    b->host = NULL; /* never touched directly by engine code: transfers go through tensor_set/get */
    *out = b;
    return LM_STATUS_OK;
}

static void vk_buffer_free(lm_buffer *b) {
    if (!b) return;
    vk_ctx *c = b->be->impl;
    vkDeviceWaitIdle(c->dev);
    /* rope tables made from frequency factors in this buffer are stale once it goes (a new
       buffer may reuse the address) */
    for (int i = c->n_ftab; i-- > 0;)
        if (c->ftab[i].fbuf == b) {
            buf_destroy(c, &c->ftab[i].buf);
            c->ftab[i] = c->ftab[--c->n_ftab];
        }
    buf_destroy(c, b->impl);
    free(b->impl);
    free(b);
}

/* Staging ring: slot i's buffer, command buffer and fence. A slot is busy from the submit of its
 * copy until ring_wait; the host touches a slot's buffer only when it is not busy. */
static lm_status ring_wait(vk_ctx *c, int i) {
    if (!c->ring[i].busy) return LM_STATUS_OK;
    c->ring[i].busy = false;
    VkResult r = vkWaitForFences(c->dev, 1, &c->ring[i].fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS) return lm_fail(LM_STATUS_BACKEND, "vulkan: waiting for a transfer failed (VkResult %d)", (int)r);
    return LM_STATUS_OK;
}

static lm_status ring_wait_all(vk_ctx *c) {
    lm_status st = LM_STATUS_OK;
    for (int i = 0; i < VK_RING_SLOTS; i++) {
        lm_status s2 = ring_wait(c, i);
        if (!st) st = s2;
    }
    return st;
}

/* submit a copy src -> dst through slot i (not waited for) */
static lm_status ring_copy(vk_ctx *c, int i, VkBuffer src, size_t src_off, VkBuffer dst, size_t dst_off, size_t size) {
    lm_status st = LM_STATUS_OK;
    VkCommandBuffer cb = c->ring[i].cmd;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VKF(vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
    VkBufferCopy r = {.srcOffset = src_off, .dstOffset = dst_off, .size = size};
    vkCmdCopyBuffer(cb, src, dst, 1, &r);
    VKF(vkEndCommandBuffer(cb), "vkEndCommandBuffer");
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    VKF(vkResetFences(c->dev, 1, &c->ring[i].fence), "vkResetFences");
    VKF(vkQueueSubmit(c->queue, 1, &si, c->ring[i].fence), "vkQueueSubmit");
    c->ring[i].busy = true;
    return LM_STATUS_OK;
fail:
    return st;
}

static lm_status ring_ensure(vk_ctx *c, int i) {
    if (c->ring[i].buf.buf) return LM_STATUS_OK;
    return buf_create(c, VK_RING_CHUNK, c->mem_host, true, &c->ring[i].buf);
}

static lm_status vk_tensor_set(lm_backend *be, lm_tensor *t, const void *src, size_t offs, size_t size) {
    vk_ctx *c = be->impl;
    vk_buf *vb = t->buf->impl;
    if (t->offs + offs + size > vb->size) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "vulkan: tensor_set out of range");
    if (c->recording) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "vulkan: tensor_set while a step is being recorded");
    if (vb->mapped) {
        memcpy((char *)vb->mapped + t->offs + offs, src, size);
        return LM_STATUS_OK;
    }
    /* the host fills slot k while the device copies slot k - 1 */
    lm_status st = LM_STATUS_OK;
    int k = 0;
    for (size_t done = 0; done < size && !st; done += VK_RING_CHUNK, k = (k + 1) % VK_RING_SLOTS) {
        const size_t n = size - done < VK_RING_CHUNK ? size - done : VK_RING_CHUNK;
        if ((st = ring_wait(c, k)) || (st = ring_ensure(c, k))) break;
        memcpy(c->ring[k].buf.mapped, (const char *)src + done, n);
        st = ring_copy(c, k, c->ring[k].buf.buf, 0, vb->buf, t->offs + offs + done, n);
    }
    lm_status s2 = ring_wait_all(c);
    return st ? st : s2;
}

static lm_status vk_tensor_get(lm_backend *be, const lm_tensor *t, void *dst, size_t offs, size_t size) {
    vk_ctx *c = be->impl;
    vk_buf *vb = t->buf->impl;
    if (t->offs + offs + size > vb->size) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "vulkan: tensor_get out of range");
    if (vb->mapped) {
        memcpy(dst, (const char *)vb->mapped + t->offs + offs, size);
        return LM_STATUS_OK;
    }
    /* the device copies chunk j + 1 while the host drains chunk j */
    lm_status st = LM_STATUS_OK;
    const size_t nchunks = (size + VK_RING_CHUNK - 1) / VK_RING_CHUNK;
    for (size_t j = 0; j < nchunks && !st; j++) {
        for (size_t q = j; q < nchunks && q < j + VK_RING_SLOTS && !st; q++) { /* keep the ring full */
            const int k = (int)(q % VK_RING_SLOTS);
            if (c->ring[k].busy) continue;
            const size_t done = q * VK_RING_CHUNK, n = size - done < VK_RING_CHUNK ? size - done : VK_RING_CHUNK;
            if (!(st = ring_ensure(c, k))) st = ring_copy(c, k, vb->buf, t->offs + offs + done, c->ring[k].buf.buf, 0, n);
        }
        const int k = (int)(j % VK_RING_SLOTS);
        if (st || (st = ring_wait(c, k))) break;
        const size_t done = j * VK_RING_CHUNK, n = size - done < VK_RING_CHUNK ? size - done : VK_RING_CHUNK;
        memcpy((char *)dst + done, c->ring[k].buf.mapped, n);
    }
    lm_status s2 = ring_wait_all(c);
    return st ? st : s2;
}

int lm_vk_shader_find(const char *name) {
    for (int i = 0; i < lm_vk_shader_count; i++)
        if (!strcmp(lm_vk_shaders[i].name, name)) return i;
    return -1;
}

VkPipeline lm_vk_pipeline(lm_backend *be, int shader) {
    vk_ctx *c = be->impl;
    if (shader < 0 || shader >= lm_vk_shader_count) return VK_NULL_HANDLE;
    if (c->pipes[shader]) return c->pipes[shader];
    VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = lm_vk_shaders[shader].size,
                                    .pCode = lm_vk_shaders[shader].code};
    VkShaderModule mod;
    if (vkCreateShaderModule(c->dev, &mci, NULL, &mod) != VK_SUCCESS) return VK_NULL_HANDLE;
    VkComputePipelineCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod, .pName = "main"},
        .layout = c->layout};
    VkPipeline p = VK_NULL_HANDLE;
    if (vkCreateComputePipelines(c->dev, c->cache, 1, &pci, NULL, &p) != VK_SUCCESS) p = VK_NULL_HANDLE;
    vkDestroyShaderModule(c->dev, mod, NULL);
    c->pipes[shader] = p;
    return p;
}

void lm_vk_dispatch(lm_backend *be, const lm_node *n, int shader, const void *pc, size_t pc_size, uint32_t gx, uint32_t gy,
                    uint32_t gz) {
    vk_ctx *c = be->impl;
    if (be->err) return;
    VkPipeline p = lm_vk_pipeline(be, shader);
    if (!p) {
        lm_backend_latch(be, LM_STATUS_BACKEND, "cannot create the pipeline of shader %s",
                         shader >= 0 && shader < lm_vk_shader_count ? lm_vk_shaders[shader].name : "?");
        return;
    }
    const uint32_t lim = c->props.limits.maxComputeWorkGroupCount[0];
    if (gx == 0 || gy == 0 || gz == 0) return;
    if (gx > lim || gy > c->props.limits.maxComputeWorkGroupCount[1] || gz > c->props.limits.maxComputeWorkGroupCount[2]) {
        lm_backend_latch(be, LM_STATUS_UNSUPPORTED, "%s: grid %u x %u x %u exceeds the device limits", lm_vk_shaders[shader].name,
                         gx, gy, gz);
        return;
    }
    const bool timed = be->profiling && c->qpool && c->n_queries + 2 <= VK_MAX_QUERIES;
    if (timed) vkCmdWriteTimestamp(c->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, c->qpool, c->n_queries);
    vkCmdBindPipeline(c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p);
    vkCmdPushConstants(c->cmd, c->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)pc_size, pc);
    vkCmdDispatch(c->cmd, gx, gy, gz);
    if (timed) {
        vkCmdWriteTimestamp(c->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, c->n_queries + 1);
        const uint32_t k = c->n_queries / 2;
        c->query_op[k] = n->op;
        lm_node_cost(n, &c->query_bytes[k], &c->query_flops[k]);
        c->n_queries += 2;
    }
    /* every dispatch may read what the previous ones wrote (and the arena reuses memory) */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL,
                         0, NULL);
}

VkDeviceAddress lm_vk_args(lm_backend *be, const void *data, size_t size) {
    vk_ctx *c = be->impl;
    const size_t need = c->args_used + lm_pad(size, 16);
    if (!c->args.buf || need > c->args.size) {
        if (c->args_used > 0) { /* the step already references this buffer: no regrowth mid-step */
            lm_backend_latch(be, LM_STATUS_OUT_OF_MEMORY, "argument ring full (%zu bytes)", c->args.size);
            return 0;
        }
        buf_destroy(c, &c->args);
        if (buf_create(c, need > (1u << 20) ? need : (1u << 20), c->mem_host, true, &c->args)) {
            lm_backend_latch(be, LM_STATUS_OUT_OF_MEMORY, "cannot allocate the argument ring");
            return 0;
        }
    }
    memcpy((char *)c->args.mapped + c->args_used, data, size);
    const VkDeviceAddress a = c->args.addr + c->args_used;
    c->args_used = need;
    return a;
}

VkDeviceAddress lm_vk_scratch(lm_backend *be, size_t size) {
    vk_ctx *c = be->impl;
    const size_t need = c->scratch_used + lm_pad(size, 256);
    if (!c->scratch.buf || need > c->scratch.size) {
        if (c->scratch.buf) {
            if (c->n_garbage == (int)(sizeof c->garbage / sizeof c->garbage[0])) {
                lm_backend_latch(be, LM_STATUS_OUT_OF_MEMORY, "scratch regrown too often in one step");
                return 0;
            }
            c->garbage[c->n_garbage++] = c->scratch; /* freed at sync, after the step ran */
            memset(&c->scratch, 0, sizeof c->scratch);
        }
        const size_t sz = lm_pad(need * 2 > (16u << 20) ? need * 2 : (16u << 20), 4096);
        if (buf_create(c, sz, c->mem_device, false, &c->scratch)) {
            lm_backend_latch(be, LM_STATUS_OUT_OF_MEMORY, "cannot allocate %zu bytes of scratch", sz);
            return 0;
        }
        c->scratch_used = 0;
    }
    const VkDeviceAddress a = c->scratch.addr + c->scratch_used;
    c->scratch_used += lm_pad(size, 256);
    return a;
}

static lm_status vk_tensor_get(lm_backend *be, const lm_tensor *t, void *dst, size_t offs, size_t size);

VkDeviceAddress lm_vk_freqs(lm_backend *be, const lm_rope_params *rp, const lm_tensor *factors) {
    vk_ctx *c = be->impl;
    for (int i = 0; i < c->n_ftab; i++)
        if (!memcmp(&c->ftab[i].rp, rp, sizeof *rp) && c->ftab[i].fbuf == (factors ? factors->buf : NULL) &&
            c->ftab[i].foffs == (factors ? factors->offs : 0))
            return c->ftab[i].buf.addr;
    if (c->n_ftab == (int)(sizeof c->ftab / sizeof c->ftab[0])) {
        lm_backend_latch(be, LM_STATUS_UNSUPPORTED, "more than %d rope configurations", c->n_ftab);
        return 0;
    }
    const size_t n = rp->n_pairs > 0 ? (size_t)rp->n_pairs : 1;
    float *fac = NULL;
    if (factors) {
        /* weights do not change: read the factors once (a transfer outside the step's buffer) */
        fac = malloc(n * sizeof(float));
        if (!fac || vk_tensor_get(be, factors, fac, 0, n * sizeof(float)) != LM_STATUS_OK) {
            free(fac);
            lm_backend_latch(be, LM_STATUS_BACKEND, "cannot read rope frequency factors");
            return 0;
        }
    }
    const int k = c->n_ftab;
    if (buf_create(c, n * 8, c->mem_host, true, &c->ftab[k].buf)) {
        free(fac);
        lm_backend_latch(be, LM_STATUS_OUT_OF_MEMORY, "cannot allocate a rope frequency table");
        return 0;
    }
    uint64_t *g = c->ftab[k].buf.mapped;
    for (int32_t i = 0; i < rp->n_pairs; i++) {
        /* turns per position, f / (2 pi), as a 64-bit binary fraction (whole turns wrap away) */
        long double f = (long double)rp->freq_scale * powl((long double)rp->theta, -2.0L * (long double)i / (long double)rp->freq_dim);
        if (fac) f /= (long double)fac[i];
        long double turns = f / (2.0L * 3.14159265358979323846264338327950288L);
        turns -= floorl(turns);
        g[i] = isfinite((double)turns) ? (uint64_t)(turns * 18446744073709551616.0L) : 0;
    }
    free(fac);
    c->ftab[k].rp = *rp;
    c->ftab[k].fbuf = factors ? factors->buf : NULL;
    c->ftab[k].foffs = factors ? factors->offs : 0;
    c->n_ftab++;
    return c->ftab[k].buf.addr;
}

static bool vk_supports(lm_backend *be, const lm_node *n) { return lm_vk_supports(be, n); }

static void vk_run(lm_backend *be, const lm_node *n) {
    vk_ctx *c = be->impl;
    if (!c->recording) {
        lm_backend_latch(be, LM_STATUS_INVALID_ARGUMENT, "run() outside begin()/submit()");
        return;
    }
    lm_vk_run(be, n);
}

static lm_status vk_begin(lm_backend *be) {
    vk_ctx *c = be->impl;
    lm_status st = lm_backend_take_error(be);
    if (st) return st;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VKF(vkResetCommandBuffer(c->cmd, 0), "vkResetCommandBuffer");
    VKF(vkBeginCommandBuffer(c->cmd, &bi), "vkBeginCommandBuffer");
    c->n_queries = 0;
    c->args_used = 0;
    c->scratch_used = 0;
    if (be->profiling && c->qpool) vkCmdResetQueryPool(c->cmd, c->qpool, 0, VK_MAX_QUERIES);
    /* the host wrote step inputs (mapped or copied) before this step: make them visible */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_HOST_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    c->recording = true;
    return LM_STATUS_OK;
fail:
    return st;
}

static lm_status vk_submit(lm_backend *be) {
    vk_ctx *c = be->impl;
    lm_status st = LM_STATUS_OK;
    if (!c->recording) return lm_fail(LM_STATUS_INVALID_ARGUMENT, "vulkan: submit without begin");
    c->recording = false;
    /* results become visible to host reads and transfers after the fence */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT};
    vkCmdPipelineBarrier(c->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
    VKF(vkEndCommandBuffer(c->cmd), "vkEndCommandBuffer");
    st = lm_backend_take_error(be);
    if (st) return st; /* a failed recording is not submitted */
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &c->cmd};
    VKF(vkResetFences(c->dev, 1, &c->fence), "vkResetFences");
    VKF(vkQueueSubmit(c->queue, 1, &si, c->fence), "vkQueueSubmit");
    return LM_STATUS_OK;
fail:
    return st;
}

static lm_status vk_sync(lm_backend *be) {
    vk_ctx *c = be->impl;
    lm_status st = LM_STATUS_OK;
    VkResult r = vkWaitForFences(c->dev, 1, &c->fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS) return lm_fail(LM_STATUS_BACKEND, "vulkan: waiting for the step failed (VkResult %d)", (int)r);
    for (int i = 0; i < c->n_garbage; i++) buf_destroy(c, &c->garbage[i]);
    c->n_garbage = 0;
    if (be->profiling && c->n_queries > 0) {
        uint64_t *ts = malloc(c->n_queries * sizeof(uint64_t));
        if (ts && vkGetQueryPoolResults(c->dev, c->qpool, 0, c->n_queries, c->n_queries * sizeof(uint64_t), ts, sizeof(uint64_t),
                                        VK_QUERY_RESULT_64_BIT) == VK_SUCCESS) {
            const double period = (double)c->props.limits.timestampPeriod * 1e-9;
            for (uint32_t k = 0; k < c->n_queries / 2; k++) {
                const lm_op op = c->query_op[k];
                be->prof.seconds[op] += (double)(ts[2 * k + 1] - ts[2 * k]) * period;
                be->prof.calls[op]++;
                be->prof.bytes[op] += c->query_bytes[k];
                be->prof.flops[op] += c->query_flops[k];
            }
        }
        free(ts);
        c->n_queries = 0;
    }
    st = lm_backend_take_error(be);
    return st;
}

static void vk_profile_enable(lm_backend *be, bool on) {
    be->profiling = on;
    if (on) memset(&be->prof, 0, sizeof be->prof);
}

const lm_backend_ops lm_vk_backend_ops = {
    .version = LM_BACKEND_OPS_VERSION,
    .name = "vulkan",
    .device_count = vk_device_count,
    .create = vk_create,
    .destroy = vk_destroy,
    .device_info = vk_device_info,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_from_host = NULL,
    .buffer_free = vk_buffer_free,
    .tensor_set = vk_tensor_set,
    .tensor_get = vk_tensor_get,
    .supports = vk_supports,
    .run = vk_run,
    .begin = vk_begin,
    .submit = vk_submit,
    .sync = vk_sync,
    .profile_enable = vk_profile_enable,
};
