/* A stand-in libnvidia-ml.so.1 for tests: the NVML C functions pynvml calls, answering from a spec file.
 *
 * The spec file (path in GPUDOCTOR_TEST_NVML_SPEC) holds key=value lines:
 *   init=0 | crash | hang | <NVML error code>      what nvmlInit does
 *   driver=535.104.05  cuda=12020  count=2  count_error=<code>
 *   gpuN.handle=<code>   gpuN.name=...  gpuN.uuid=...  gpuN.bus=00000000:07:00.0  gpuN.devid=0x20B010DE
 *   gpuN.cc=8.0  gpuN.total=<bytes>  gpuN.used=<bytes>  gpuN.persist=0|1  gpuN.mig=<current>,<pending>
 *   gpuN.procs=<pid>:<bytes>,...   gpuN.fail=<code> (every query on that GPU fails)
 *   gpuN.migM.name=...  gpuN.migM.uuid=...  gpuN.migM.total=<bytes>
 * A feature left out (uuid, persist, mig) answers NVML_ERROR_NOT_SUPPORTED, as real GPUs without it do.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_GPUS 8
#define MAX_MIGS 7
#define MAX_PROCS 8

typedef struct device {
    int present, handle_error, fail, is_mig;
    char name[96], uuid[96], bus[32];
    unsigned int devid;
    int cc_major, cc_minor;
    unsigned long long total, used;
    int persist; /* -1: not supported */
    int mig_current, mig_pending; /* -1: not supported */
    int nprocs;
    unsigned int pids[MAX_PROCS];
    unsigned long long proc_used[MAX_PROCS];
    int nmigs;
    struct device *migs;
} device_t;

typedef struct {
    unsigned long long total, free, used;
} memory_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} pci_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} process_t;

static device_t gpus[MAX_GPUS];
static device_t migs[MAX_GPUS][MAX_MIGS];
static char driver[80] = "535.104.05";
static int cuda = 12020, count = 0, count_error = 0, initialised = 0;

static void fresh(device_t *d) {
    memset(d, 0, sizeof *d);
    d->persist = -1;
    d->mig_current = d->mig_pending = -1;
}

static void set_device(device_t *d, const char *key, const char *value) {
    d->present = 1;
    if (!strcmp(key, "handle")) d->handle_error = atoi(value);
    else if (!strcmp(key, "fail")) d->fail = atoi(value);
    else if (!strcmp(key, "name")) snprintf(d->name, sizeof d->name, "%s", value);
    else if (!strcmp(key, "uuid")) snprintf(d->uuid, sizeof d->uuid, "%s", value);
    else if (!strcmp(key, "bus")) snprintf(d->bus, sizeof d->bus, "%s", value);
    else if (!strcmp(key, "devid")) d->devid = (unsigned int)strtoul(value, NULL, 0);
    else if (!strcmp(key, "cc")) sscanf(value, "%d.%d", &d->cc_major, &d->cc_minor);
    else if (!strcmp(key, "total")) d->total = strtoull(value, NULL, 10);
    else if (!strcmp(key, "used")) d->used = strtoull(value, NULL, 10);
    else if (!strcmp(key, "persist")) d->persist = atoi(value);
    else if (!strcmp(key, "mig")) sscanf(value, "%d,%d", &d->mig_current, &d->mig_pending);
    else if (!strcmp(key, "procs")) {
        const char *p = value;
        while (*p && d->nprocs < MAX_PROCS) {
            unsigned int pid;
            unsigned long long used;
            int read = 0;
            if (sscanf(p, "%u:%llu%n", &pid, &used, &read) != 2) break;
            d->pids[d->nprocs] = pid;
            d->proc_used[d->nprocs++] = used;
            p += read;
            if (*p == ',') p++;
        }
    }
}

static int load(void) {
    const char *path = getenv("GPUDOCTOR_TEST_NVML_SPEC");
    FILE *f = path ? fopen(path, "r") : NULL;
    char line[512];
    int init = 0;
    for (int i = 0; i < MAX_GPUS; i++) {
        fresh(&gpus[i]);
        gpus[i].migs = migs[i];
        for (int j = 0; j < MAX_MIGS; j++) fresh(&migs[i][j]);
    }
    if (!f) return 999;
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '=');
        int gpu, mig, used;
        char rest[64];
        if (!eq) continue;
        *eq = 0;
        char *value = eq + 1;
        value[strcspn(value, "\n")] = 0;
        if (!strcmp(line, "init")) {
            if (!strcmp(value, "crash")) init = -1;
            else if (!strcmp(value, "hang")) init = -2;
            else init = atoi(value);
        } else if (!strcmp(line, "driver")) snprintf(driver, sizeof driver, "%s", value);
        else if (!strcmp(line, "cuda")) cuda = atoi(value);
        else if (!strcmp(line, "count")) count = atoi(value);
        else if (!strcmp(line, "count_error")) count_error = atoi(value);
        else if (sscanf(line, "gpu%d.mig%d.%63s%n", &gpu, &mig, rest, &used) == 3 && gpu >= 0 &&
                 gpu < MAX_GPUS && mig >= 0 && mig < MAX_MIGS) {
            set_device(&migs[gpu][mig], rest, value);
            migs[gpu][mig].is_mig = 1;
            if (mig + 1 > gpus[gpu].nmigs) gpus[gpu].nmigs = mig + 1;
        } else if (sscanf(line, "gpu%d.%63s", &gpu, rest) == 2 && gpu >= 0 && gpu < MAX_GPUS)
            set_device(&gpus[gpu], rest, value);
    }
    fclose(f);
    return init;
}

int nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    int init = load();
    if (init == -1) *(volatile int *)0 = 0; /* what a half-installed driver does */
    if (init == -2)
        for (;;) pause();
    if (init == 0) initialised = 1;
    return init;
}

int nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
int nvmlShutdown(void) { initialised = 0; return 0; }
const char *nvmlErrorString(int result) { return result == 999 ? "Unknown Error" : "Stand-in error"; }

int nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    snprintf(version, length, "%s", driver);
    return 0;
}
int nvmlSystemGetCudaDriverVersion_v2(int *version) { *version = cuda; return 0; }
int nvmlSystemGetCudaDriverVersion(int *version) { *version = cuda; return 0; }

int nvmlDeviceGetCount_v2(unsigned int *n) {
    if (!initialised) return 1;
    if (count_error) return count_error;
    *n = (unsigned int)count;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, device_t **handle) {
    if (index >= (unsigned int)count || index >= MAX_GPUS) return 2;
    if (gpus[index].handle_error) return gpus[index].handle_error;
    *handle = &gpus[index];
    return 0;
}

#define QUERY(d) \
    if (!(d)) return 2; \
    if ((d)->fail) return (d)->fail

int nvmlDeviceGetName(device_t *d, char *name, unsigned int length) {
    QUERY(d);
    snprintf(name, length, "%s", d->name);
    return 0;
}
int nvmlDeviceGetUUID(device_t *d, char *uuid, unsigned int length) {
    QUERY(d);
    if (!d->uuid[0]) return 3;
    snprintf(uuid, length, "%s", d->uuid);
    return 0;
}
int nvmlDeviceGetCudaComputeCapability(device_t *d, int *major, int *minor) {
    QUERY(d);
    *major = d->cc_major;
    *minor = d->cc_minor;
    return 0;
}
int nvmlDeviceGetMemoryInfo(device_t *d, memory_t *memory) {
    QUERY(d);
    memory->total = d->total;
    memory->used = d->used;
    memory->free = d->total - d->used;
    return 0;
}
int nvmlDeviceGetPciInfo_v3(device_t *d, pci_t *pci) {
    QUERY(d);
    if (d->is_mig) return 3;
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busId, sizeof pci->busId, "%s", d->bus);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%.15s", d->bus);
    pci->pciDeviceId = d->devid;
    return 0;
}
int nvmlDeviceGetPersistenceMode(device_t *d, int *mode) {
    QUERY(d);
    if (d->persist < 0) return 3;
    *mode = d->persist;
    return 0;
}
int nvmlDeviceGetMigMode(device_t *d, unsigned int *current, unsigned int *pending) {
    QUERY(d);
    if (d->mig_current < 0) return 3;
    *current = (unsigned int)d->mig_current;
    *pending = (unsigned int)d->mig_pending;
    return 0;
}
int nvmlDeviceGetMaxMigDeviceCount(device_t *d, unsigned int *n) {
    QUERY(d);
    if (d->mig_current < 0) return 3;
    *n = MAX_MIGS;
    return 0;
}
int nvmlDeviceGetMigDeviceHandleByIndex(device_t *d, unsigned int index, device_t **handle) {
    QUERY(d);
    if (index >= MAX_MIGS || !d->migs || !d->migs[index].present) return 6;
    *handle = &d->migs[index];
    return 0;
}
int nvmlDeviceGetComputeRunningProcesses_v3(device_t *d, unsigned int *n, process_t *infos) {
    QUERY(d);
    if (*n < (unsigned int)d->nprocs || (!infos && d->nprocs)) {
        *n = (unsigned int)d->nprocs;
        return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
    }
    for (int i = 0; i < d->nprocs; i++) {
        infos[i].pid = d->pids[i];
        infos[i].usedGpuMemory = d->proc_used[i];
        infos[i].gpuInstanceId = infos[i].computeInstanceId = 0xFFFFFFFF;
    }
    *n = (unsigned int)d->nprocs;
    return 0;
}
