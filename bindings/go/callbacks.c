// C side of the callbacks: trampolines from the library's callback signatures into the
// exported Go functions. The cgo.Handle travels as an integer, so C never holds a Go pointer.
#include <poolproxy.h>
#include <stdint.h>

#include "_cgo_export.h"

static void pp_go_log_trampoline(void *ud, int level, const char *message) {
    ppGoLog((uintptr_t)ud, level, (char *)message);
}

static void pp_go_event_trampoline(void *ud, const pp_event *ev) {
    ppGoEvent((uintptr_t)ud, ev->type, ev->backend_id, (char *)ev->address, (char *)ev->reason);
}

static void pp_go_access_trampoline(void *ud, const pp_access_entry *e) {
    ppGoAccess((uintptr_t)ud, (pp_access_entry *)e);
}

int pp_go_set_access(pp_config *cfg, uintptr_t handle) {
    return pp_config_set_access_callback(cfg, handle ? pp_go_access_trampoline : NULL, (void *)handle);
}

int pp_go_set_log(pp_config *cfg, uintptr_t handle, int level) {
    return pp_config_set_log_callback(cfg, handle ? pp_go_log_trampoline : NULL, (void *)handle, level);
}

int pp_go_set_event(pp_config *cfg, uintptr_t handle) {
    return pp_config_set_event_callback(cfg, handle ? pp_go_event_trampoline : NULL, (void *)handle);
}

static int pp_go_request_trampoline(void *ud, pp_exchange *ex, const pp_request_info *info) {
    return ppGoRequest((uintptr_t)ud, ex, (pp_request_info *)info);
}

static int pp_go_response_trampoline(void *ud, pp_exchange *ex, const pp_response_info *info) {
    return ppGoResponse((uintptr_t)ud, ex, (pp_response_info *)info);
}

static int pp_go_connect_trampoline(void *ud, pp_exchange *ex, const pp_connect_info *info) {
    return ppGoConnect((uintptr_t)ud, ex, (pp_connect_info *)info);
}

int pp_go_set_request(pp_config *cfg, uintptr_t handle) {
    return pp_config_set_request_hook(cfg, handle ? pp_go_request_trampoline : NULL, (void *)handle);
}

int pp_go_set_response(pp_config *cfg, uintptr_t handle) {
    return pp_config_set_response_hook(cfg, handle ? pp_go_response_trampoline : NULL, (void *)handle);
}

int pp_go_set_connect(pp_config *cfg, uintptr_t handle) {
    return pp_config_set_connect_hook(cfg, handle ? pp_go_connect_trampoline : NULL, (void *)handle);
}
