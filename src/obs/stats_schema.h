// The stats tables of poolproxy.h (PP_STATS_FIELDS, PP_WORKER_STATS_FIELDS,
// PP_BACKEND_STATS_FIELDS) seen from inside: which holder keeps a Counter for a field, and a
// description of every field for the export. A row's `from` token picks the holder, so a field
// counted per worker or per pool is one row in the public header: its Counter, its sum, its
// Prometheus series and its JSON key all follow from it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "poolproxy.h"

// PP_OBS_IF_<holder>_<from>(code): `code` when a row's `from` says that holder counts it.
// A worker keeps a Counter for the WORKER rows of pp_stats and pp_worker_stats; the SHARED rows
// of pp_worker_stats read the worker's pp_stats Counter of the same name.
#define PP_OBS_IF_WORKER_WORKER(...) __VA_ARGS__
#define PP_OBS_IF_WORKER_SHARED(...)
#define PP_OBS_IF_WORKER_POOL(...)
#define PP_OBS_IF_WORKER_OTHER(...)
#define PP_OBS_IF_READS_WORKER_WORKER(...) __VA_ARGS__
#define PP_OBS_IF_READS_WORKER_SHARED(...) __VA_ARGS__
#define PP_OBS_IF_READS_WORKER_POOL(...)
#define PP_OBS_IF_READS_WORKER_OTHER(...)
// Each worker's pool of a backend keeps a Counter for the POOL rows of pp_backend_stats.
#define PP_OBS_IF_POOL_WORKER(...)
#define PP_OBS_IF_POOL_SHARED(...)
#define PP_OBS_IF_POOL_POOL(...) __VA_ARGS__
#define PP_OBS_IF_POOL_OTHER(...)

// Members: one `Counter field;` per row the holder counts (used inside the counter structs).
#define PP_OBS_WORKER_COUNTER_(field, kind, from, since, series, labels, doc) \
    PP_OBS_IF_WORKER_##from(Counter field;)
#define PP_OBS_POOL_COUNTER_(field, kind, from, since, series, labels, doc) PP_OBS_IF_POOL_##from(Counter field;)

namespace pp {

enum class FieldKind { COUNTER, GAUGE, FLAG };

// One row of a table, for the export: the value is `row.*member`.
template <typename T>
struct FieldInfo {
    const char *name;
    FieldKind kind;
    const char *series;  // Prometheus metric without "poolproxy_"; "" when not exported
    const char *labels;  // labels that tell apart the fields one series carries; "" when none
    const char *doc;
    uint64_t T::*member;
};

template <typename T>
struct StatsSchema;

#define PP_OBS_FIELD_INFO_(T, field, kind, from, since, series, labels, doc) \
    FieldInfo<T>{#field, FieldKind::kind, series, labels, doc, &T::field},
#define PP_OBS_STATS_INFO_(...) PP_OBS_FIELD_INFO_(pp_stats, __VA_ARGS__)
#define PP_OBS_WORKER_INFO_(...) PP_OBS_FIELD_INFO_(pp_worker_stats, __VA_ARGS__)
#define PP_OBS_BACKEND_INFO_(...) PP_OBS_FIELD_INFO_(pp_backend_stats, __VA_ARGS__)

template <>
struct StatsSchema<pp_stats> {
    static constexpr FieldInfo<pp_stats> fields[] = {PP_STATS_FIELDS(PP_OBS_STATS_INFO_)};
};
template <>
struct StatsSchema<pp_worker_stats> {
    static constexpr FieldInfo<pp_worker_stats> fields[] = {PP_WORKER_STATS_FIELDS(PP_OBS_WORKER_INFO_)};
};
template <>
struct StatsSchema<pp_backend_stats> {
    static constexpr FieldInfo<pp_backend_stats> fields[] = {PP_BACKEND_STATS_FIELDS(PP_OBS_BACKEND_INFO_)};
};

#undef PP_OBS_STATS_INFO_
#undef PP_OBS_WORKER_INFO_
#undef PP_OBS_BACKEND_INFO_
#undef PP_OBS_FIELD_INFO_

// Every field of the tables is one uint64_t after struct_size: the ABI the tables must keep.
#define PP_OBS_COUNT_(...) +1
static_assert(sizeof(pp_stats) == sizeof(size_t) + 8 * (0 PP_STATS_FIELDS(PP_OBS_COUNT_)), "pp_stats layout");
static_assert(sizeof(pp_worker_stats) == sizeof(size_t) + 8 * (0 PP_WORKER_STATS_FIELDS(PP_OBS_COUNT_)),
              "pp_worker_stats layout");
static_assert(sizeof(pp_backend_stats) == sizeof(size_t) + 8 * (0 PP_BACKEND_STATS_FIELDS(PP_OBS_COUNT_)),
              "pp_backend_stats layout");
#undef PP_OBS_COUNT_

}  // namespace pp
