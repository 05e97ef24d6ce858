/*
 * keep_libraries.c — LD_PRELOADed into the Vulkan test under LeakSanitizer: makes dlclose a
 * no-op so that GPU drivers and layers stay mapped until exit. Without it the Vulkan loader
 * unmaps the driver at vkDestroyInstance, the driver's static allocations lose their last
 * reference (it lived in the unmapped library) and LeakSanitizer reports them as leaks from an
 * "unknown module", which would hide or fake leaks of lumen's own.
 */
int dlclose(void *handle);
int dlclose(void *handle) {
    (void)handle;
    return 0;
}
