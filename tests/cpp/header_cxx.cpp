// The public header alone, compiled as C++ (-pedantic -Werror): it must need no C++ type and
// declare everything extern "C". Building this is the test.
#include <poolproxy.h>

#include <type_traits>

static_assert(std::is_standard_layout<pp_stats>::value, "pp_stats crosses the C boundary");
static_assert(std::is_trivially_copyable<pp_worker_stats>::value, "pp_worker_stats crosses the C boundary");

int main() { return pp_version() == PP_VERSION_HEX ? 0 : 1; }
