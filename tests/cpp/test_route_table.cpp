// Declarative routes (issue 17): first match wins, each condition as documented in
// proto/route_table.h, invalid routes refused with a reason.
#include <gtest/gtest.h>

#include "proto/route_table.h"

using pp::HttpHead;
using pp::Route;
using pp::RouteTable;

namespace {

HttpHead req(const std::string &method, const std::string &target, std::vector<pp::HttpHeader> fields = {}) {
    HttpHead h;
    h.method = method;
    h.target = target;
    h.headers = std::move(fields);
    return h;
}

Route to(int group) {
    Route r;
    r.group = group;
    return r;
}

}  // namespace

TEST(RouteTable, NoRouteGoesToTheDefaultGroup) {
    RouteTable t;
    t.set_default_group(3);
    EXPECT_EQ(t.match(req("GET", "/")), nullptr);
    EXPECT_EQ(t.group_for(req("GET", "/")), 3);
}

TEST(RouteTable, HostExactAndSuffix) {
    RouteTable t;
    std::string why;
    Route a = to(1);
    a.host = "API.example.com";
    Route b = to(2);
    b.host = "*.example.com";
    ASSERT_TRUE(t.add(a, &why)) << why;
    ASSERT_TRUE(t.add(b, &why)) << why;
    EXPECT_EQ(t.group_for(req("GET", "/", {{"Host", "api.example.com"}})), 1);
    EXPECT_EQ(t.group_for(req("GET", "/", {{"host", "Api.Example.Com:8080"}})), 1);  // case, port
    EXPECT_EQ(t.group_for(req("GET", "/", {{"Host", "api.example.com."}})), 1);      // trailing dot
    EXPECT_EQ(t.group_for(req("GET", "/", {{"Host", "www.example.com"}})), 2);
    EXPECT_EQ(t.group_for(req("GET", "/", {{"Host", "a.b.example.com"}})), 2);
    EXPECT_EQ(t.group_for(req("GET", "/", {{"Host", "example.com"}})), 0);     // not below it
    EXPECT_EQ(t.group_for(req("GET", "/", {{"Host", "badexample.com"}})), 0);  // not a label boundary
    EXPECT_EQ(t.group_for(req("GET", "/")), 0);                                // no Host
}

TEST(RouteTable, PathPrefixMethodAndHeader) {
    RouteTable t;
    std::string why;
    Route canary = to(4);
    canary.header = "X-Env";
    canary.header_value = "canary";
    canary.has_header_value = true;
    Route api_post = to(1);
    api_post.path_prefix = "/api/";
    api_post.method = "POST";
    Route api = to(2);
    api.path_prefix = "/api/";
    Route traced = to(3);
    traced.header = "x-trace";
    for (const Route &r : {canary, api_post, api, traced}) ASSERT_TRUE(t.add(r, &why)) << why;
    EXPECT_EQ(t.group_for(req("POST", "/api/users")), 1);
    EXPECT_EQ(t.group_for(req("GET", "/api/users?x=1")), 2);
    EXPECT_EQ(t.group_for(req("get", "/api/users")), 2);  // methods are case-sensitive: not POST
    EXPECT_EQ(t.group_for(req("GET", "http://h/api/x")), 2);  // absolute-form: its path
    EXPECT_EQ(t.group_for(req("GET", "/apix")), 0);
    EXPECT_EQ(t.group_for(req("GET", "/other", {{"X-Trace", ""}})), 3);  // present, any value
    EXPECT_EQ(t.group_for(req("POST", "/api/x", {{"x-env", "canary"}})), 4);  // first match wins
    EXPECT_EQ(t.group_for(req("GET", "/", {{"x-env", "Canary"}})), 0);  // values compare exactly
}

TEST(RouteTable, StripPrefix) {
    Route r = to(1);
    r.path_prefix = "/api";
    r.strip_prefix = true;
    EXPECT_EQ(RouteTable::rewritten_target(r, "/api/users?x=1"), "/users?x=1");
    EXPECT_EQ(RouteTable::rewritten_target(r, "/api"), "/");
    EXPECT_EQ(RouteTable::rewritten_target(r, "/api?q"), "/?q");
    r.strip_prefix = false;
    EXPECT_EQ(RouteTable::rewritten_target(r, "/api/users"), "/api/users");
}

TEST(RouteTable, InvalidRoutesAreRefusedWithAReason) {
    RouteTable t;
    std::string why;
    Route r = to(1);
    r.host = "bad host";
    EXPECT_FALSE(t.add(r, &why));
    EXPECT_NE(why.find("bad host"), std::string::npos) << why;
    r = to(1);
    r.host = "*.";
    EXPECT_FALSE(t.add(r, &why));
    r = to(1);
    r.host = "a.*.com";
    EXPECT_FALSE(t.add(r, &why));
    r = to(1);
    r.path_prefix = "api";
    EXPECT_FALSE(t.add(r, &why));
    EXPECT_NE(why.find("must start with '/'"), std::string::npos) << why;
    r = to(1);
    r.strip_prefix = true;
    EXPECT_FALSE(t.add(r, &why));
    r = to(1);
    r.has_header_value = true;
    EXPECT_FALSE(t.add(r, &why));
    r = to(1);
    r.path_prefix = "/" + std::string(RouteTable::kMaxText, 'x');
    EXPECT_FALSE(t.add(r, &why));
    EXPECT_EQ(t.size(), 0u);
    for (size_t i = 0; i < RouteTable::kMaxRoutes; i++) ASSERT_TRUE(t.add(to(1), &why)) << why;
    EXPECT_FALSE(t.add(to(1), &why));
    EXPECT_NE(why.find("at most"), std::string::npos) << why;
}

TEST(RouteTable, ParsesTheConfigSyntax) {
    auto groups = [](std::string_view name) { return name == "api" ? 1 : name == "web" ? 2 : -1; };
    Route r;
    std::string why;
    ASSERT_TRUE(pp::parse_route("host=*.example.com path=/api/ method=GET header=X-Env:canary strip_prefix "
                                "host_rewrite=api.internal -> api",
                                groups, &r, &why))
        << why;
    EXPECT_EQ(r.host, "*.example.com");
    EXPECT_EQ(r.path_prefix, "/api/");
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.header, "X-Env");
    EXPECT_TRUE(r.has_header_value);
    EXPECT_EQ(r.header_value, "canary");
    EXPECT_TRUE(r.strip_prefix);
    EXPECT_EQ(r.host_rewrite, "api.internal");
    EXPECT_EQ(r.group, 1);
    ASSERT_TRUE(pp::parse_route("header=x-trace  ->  web", groups, &r, &why)) << why;
    EXPECT_EQ(r.header, "x-trace");
    EXPECT_FALSE(r.has_header_value);
    EXPECT_EQ(r.group, 2);
    ASSERT_TRUE(pp::parse_route("-> web", groups, &r, &why)) << why;  // matches everything
    // Refusals name what is wrong.
    EXPECT_FALSE(pp::parse_route("host=a.com", groups, &r, &why));
    EXPECT_NE(why.find("-> GROUP"), std::string::npos) << why;
    EXPECT_FALSE(pp::parse_route("host=a.com -> nope", groups, &r, &why));
    EXPECT_NE(why.find("no backend group named 'nope'"), std::string::npos) << why;
    EXPECT_FALSE(pp::parse_route("hots=a.com -> api", groups, &r, &why));
    EXPECT_NE(why.find("'hots=a.com'"), std::string::npos) << why;
    EXPECT_FALSE(pp::parse_route("host= -> api", groups, &r, &why));
    EXPECT_FALSE(pp::parse_route("header=:v -> api", groups, &r, &why));
    EXPECT_FALSE(pp::parse_route("path=/a -> api web", groups, &r, &why));
    EXPECT_FALSE(pp::parse_route(std::string(5000, 'x') + " -> api", groups, &r, &why));
    // What parses may still be refused by the table (its checks are RouteTable::add's).
    ASSERT_TRUE(pp::parse_route("path=api -> api", groups, &r, &why));
    RouteTable t;
    EXPECT_FALSE(t.add(r, &why));
}
