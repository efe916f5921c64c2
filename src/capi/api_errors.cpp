// pp_strerror, pp_err_name, pp_last_error and the version functions.
#include "core/errors.h"
#include "poolproxy.h"

#define PP_STR_(x) #x
#define PP_XSTR_(x) PP_STR_(x)

extern "C" {

PP_API unsigned int pp_version(void) { return PP_VERSION_HEX; }

PP_API const char *pp_version_string(void) {
    return PP_XSTR_(PP_VERSION_MAJOR) "." PP_XSTR_(PP_VERSION_MINOR) "." PP_XSTR_(PP_VERSION_PATCH);
}

PP_API const char *pp_strerror(int code) {
    switch (code) {
    case PP_OK: return "success";
#define PP_STRERROR_CASE_(name, value, msg) \
    case PP_##name: return msg;
        PP_ERRNO_MAP(PP_STRERROR_CASE_)
#undef PP_STRERROR_CASE_
    default: return "unknown error";
    }
}

PP_API const char *pp_err_name(int code) {
    switch (code) {
    case PP_OK: return "PP_OK";
#define PP_ERRNAME_CASE_(name, value, msg) \
    case PP_##name: return "PP_" #name;
        PP_ERRNO_MAP(PP_ERRNAME_CASE_)
#undef PP_ERRNAME_CASE_
    default: return "PP_E?";
    }
}

PP_API const char *pp_last_error(void) { return pp::last_error(); }

}  // extern "C"
