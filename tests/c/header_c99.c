/* The public header alone, compiled as strict C99 (-std=c99 -pedantic -Werror): this file
 * failing to build is the test. Running it checks the version macros are usable in C. */
#include <poolproxy.h>

int main(void) { return PP_VERSION_HEX == ((PP_VERSION_MAJOR << 16) | (PP_VERSION_MINOR << 8) | PP_VERSION_PATCH) ? 0 : 1; }
