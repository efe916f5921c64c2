// The option table and its parsers.
#include <gtest/gtest.h>

#include <set>

#include "core/address.h"
#include "core/options.h"

using namespace pp;

TEST(Options, DurationsParse) {
    int64_t ms = 0;
    EXPECT_TRUE(parse_duration_ms("250ms", &ms));
    EXPECT_EQ(ms, 250);
    EXPECT_TRUE(parse_duration_ms("2s", &ms));
    EXPECT_EQ(ms, 2000);
    EXPECT_TRUE(parse_duration_ms("1m", &ms));
    EXPECT_EQ(ms, 60000);
    EXPECT_TRUE(parse_duration_ms("1h", &ms));
    EXPECT_EQ(ms, 3600000);
    EXPECT_TRUE(parse_duration_ms("15", &ms));
    EXPECT_EQ(ms, 15);
    for (const char *bad : {"", "s", "1.5s", "-1s", "10 s", "1sec", "1s ", "+1s"}) {
        EXPECT_FALSE(parse_duration_ms(bad, &ms)) << bad;
    }
}

// A number times its unit that does not fit in 64 bits is out of range, never a wrapped value:
// 213503982336d is 2^64 ms and a bit, which used to wrap to a small accepted duration.
TEST(Options, DurationOverflowIsRefusedNamingTheRange) {
    int64_t ms = 0;
    EXPECT_TRUE(parse_duration_ms("106751991167d", &ms));  // the largest whole days in int64 ms
    EXPECT_EQ(ms, 106751991167LL * 86400000LL);
    EXPECT_TRUE(parse_duration_ms("9223372036854775807ms", &ms));
    EXPECT_EQ(ms, INT64_MAX);
    const char *huge[] = {"213503982336d", "106751991168d", "2562047788016h", "153722867280913m",
                          "9223372036854776s", "9223372036854775808", "18446744073709551617ms",
                          "99999999999999999999999999999999d"};
    for (size_t i = 0; i < option_count(); i++) {
        const OptionDef *d = option_at(i);
        if (d->type != PP_OPT_DURATION) continue;
        for (const char *v : huge) {
            Settings s;
            const int64_t before = s.*(d->field);
            std::string why;
            EXPECT_EQ(set_option(&s, d->name, v, &why), PP_EBADVALUE) << d->name << " = " << v;
            EXPECT_EQ(s.*(d->field), before) << d->name << " = " << v;
            EXPECT_NE(why.find(std::string("option '") + d->name + "'"), std::string::npos) << why;
            EXPECT_NE(why.find(std::to_string(d->min) + "ms.." + std::to_string(d->max) + "ms"), std::string::npos)
                << why;
        }
    }
}

TEST(Options, IntegerOverflowIsRefusedNamingTheRange) {
    const char *huge[] = {"9223372036854775808", "-9223372036854775809", "18446744073709551617",
                          "99999999999999999999999999999999"};
    for (size_t i = 0; i < option_count(); i++) {
        const OptionDef *d = option_at(i);
        if (d->type != PP_OPT_INT) continue;
        for (const char *v : huge) {
            Settings s;
            const int64_t before = s.*(d->field);
            std::string why;
            EXPECT_EQ(set_option(&s, d->name, v, &why), PP_EBADVALUE) << d->name << " = " << v;
            EXPECT_EQ(s.*(d->field), before);
            EXPECT_NE(why.find(std::string("option '") + d->name + "'"), std::string::npos) << why;
            EXPECT_NE(why.find(std::to_string(d->min) + ".." + std::to_string(d->max)), std::string::npos) << why;
        }
    }
}

TEST(Options, HealthStatusParses) {
    Settings s;
    std::string why;
    EXPECT_EQ(set_option(&s, "health_status", "204", &why), PP_OK);
    EXPECT_EQ(s.health_status_lo, 204);
    EXPECT_EQ(s.health_status_hi, 204);
    EXPECT_EQ(set_option(&s, "health_status", "200-299", &why), PP_OK);
    EXPECT_EQ(s.health_status_lo, 200);
    EXPECT_EQ(s.health_status_hi, 299);
    for (const char *bad : {"", "99", "600", "300-200", "200-", "200-2999", "2000", " 200", "200 ", "+200",
                            "99999999999999999999-200", "200-99999999999999999999", "2a0"}) {
        EXPECT_EQ(set_option(&s, "health_status", bad, &why), PP_EBADVALUE) << bad;
        EXPECT_EQ(s.health_status_lo, 200) << bad;
    }
}

TEST(Options, HealthTimeoutFollowsAShortIntervalUnlessSet) {
    Settings s;
    std::string why;
    s.backends.push_back(BackendSpec{});
    ASSERT_EQ(set_option(&s, "health_check", "http", &why), PP_OK);
    ASSERT_EQ(set_option(&s, "health_interval", "200ms", &why), PP_OK);
    EXPECT_EQ(s.health_timeout, 200);
    EXPECT_EQ(validate_settings(s, &why), PP_OK) << why;
    ASSERT_EQ(set_option(&s, "health_interval", "5s", &why), PP_OK);
    EXPECT_EQ(s.health_timeout, 1000);  // the default again, not stuck at 200ms
    ASSERT_EQ(set_option(&s, "health_timeout", "1s", &why), PP_OK);
    ASSERT_EQ(set_option(&s, "health_interval", "200ms", &why), PP_OK);
    EXPECT_EQ(s.health_timeout, 1000);  // the user's own choice stays, and is refused
    EXPECT_EQ(validate_settings(s, &why), PP_EBADVALUE);
    EXPECT_NE(why.find("'health_timeout' (1000ms) must not exceed 'health_interval' (200ms)"), std::string::npos) << why;
}

TEST(Options, TableIsWellFormed) {
    std::set<std::string> names;
    for (size_t i = 0; i < option_count(); i++) {
        const OptionDef *d = option_at(i);
        ASSERT_NE(d, nullptr);
        EXPECT_TRUE(names.insert(d->name).second) << "duplicate option " << d->name;
        EXPECT_EQ(find_option(d->name), d);
        bool numeric = d->type == PP_OPT_INT || d->type == PP_OPT_DURATION || d->type == PP_OPT_BOOL ||
                       d->type == PP_OPT_ENUM;
        EXPECT_EQ(numeric, d->field != nullptr) << d->name;
    }
    for (const char *required : {"mode", "listen", "backend", "workers", "max_connections", "lb", "pool_max",
                                  "pool_min_idle", "pool_idle_timeout", "max_conn_lifetime", "queue_max",
                                  "queue_timeout", "connect_timeout", "idle_timeout"}) {
        EXPECT_NE(find_option(required), nullptr) << required;
    }
    EXPECT_EQ(option_at(option_count()), nullptr);
}

TEST(Options, DefaultsAreApplied) {
    Settings s;
    EXPECT_EQ(s.pool_max, 64);
    EXPECT_EQ(s.pool_idle_timeout, 5000);
    EXPECT_EQ(s.queue_timeout, 2000);
    EXPECT_EQ(s.listen.port(), 8080);
    EXPECT_TRUE(s.backends.empty());
}

TEST(Options, FailedSetLeavesValue) {
    Settings s;
    std::string why;
    EXPECT_EQ(set_option(&s, "pool_max", "5", &why), PP_OK);
    EXPECT_EQ(set_option(&s, "pool_max", "5x", &why), PP_EBADVALUE);
    EXPECT_EQ(s.pool_max, 5);
    EXPECT_NE(why.find("option 'pool_max'"), std::string::npos);
}

TEST(Options, CrossChecks) {
    Settings s;
    std::string why;
    EXPECT_EQ(validate_settings(s, &why), PP_ENOBACKEND);
    ASSERT_EQ(set_option(&s, "backend", "127.0.0.1:1", &why), PP_OK);
    EXPECT_EQ(validate_settings(s, &why), PP_OK);
    s.pool_max = 0;
    s.pool_min_idle = 1;
    EXPECT_EQ(validate_settings(s, &why), PP_EBADVALUE);
}

TEST(Address, ParsesAndPrints) {
    Address a;
    std::string why;
    ASSERT_TRUE(parse_address("127.0.0.1:80", false, &a, &why));
    EXPECT_EQ(a.to_string(), "127.0.0.1:80");
    ASSERT_TRUE(parse_address("[::1]:443", false, &a, &why));
    EXPECT_EQ(a.family(), AF_INET6);
    EXPECT_EQ(a.to_string(), "[::1]:443");
    ASSERT_TRUE(parse_address("*:8080", false, &a, &why));
    EXPECT_EQ(a.to_string(), "0.0.0.0:8080");
    ASSERT_TRUE(parse_address("localhost:1", false, &a, &why));
    EXPECT_EQ(a.to_string(), "127.0.0.1:1");
    EXPECT_TRUE(parse_address("127.0.0.1:0", true, &a, &why));
    EXPECT_FALSE(parse_address("127.0.0.1:0", false, &a, &why));
    for (const char *bad : {"", ":", "1.2.3.4", "1.2.3.4:", "1.2.3.4:x", "[::1]", "[::1]80", "::1:80", "[zz]:1",
                            "example.invalid:80", "1.2.3.4:123456"}) {
        EXPECT_FALSE(parse_address(bad, true, &a, &why)) << bad;
        EXPECT_FALSE(why.empty());
    }
}
