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
    for (const char *bad : {"", "s", "1.5s", "-1s", "10 s", "1sec", "9999999999999s"}) {
        EXPECT_FALSE(parse_duration_ms(bad, &ms)) << bad;
    }
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
