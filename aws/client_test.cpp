#include "aws/client.h"

#include <catch2/catch.hpp>
#include <deque>

namespace {

using namespace kb::aws;

// Answers from a script and remembers every request.
struct FakeHttp : HttpClient {
  std::deque<HttpResponse> script;
  std::vector<HttpRequest> seen;
  HttpResponse post(const HttpRequest& r) override {
    seen.push_back(r);
    if (script.empty()) return {500, "<Response><Errors><Error><Code>InternalError</Code></Error></Errors></Response>", ""};
    HttpResponse next = script.front();
    script.pop_front();
    return next;
  }
};

AwsConfig test_config() {
  AwsConfig c;
  c.credentials = {"AKIDTEST", "SECRETTEST", "SESSIONTOKEN", "test"};
  c.region = "eu-west-1";
  c.ec2_endpoint = "http://127.0.0.1:1";
  c.elb_endpoint = "http://127.0.0.1:2";
  return c;
}

HttpResponse error_response(long status, const std::string& code, const std::string& message) {
  return {status, "<Response><Errors><Error><Code>" + code + "</Code><Message>" + message +
                      "</Message></Error></Errors><RequestID>x</RequestID></Response>", ""};
}

}  // namespace

TEST_CASE("client: retry policy", "[client]") {
  RetryPolicy p;
  CHECK(p.retryable(400, "Throttling"));
  CHECK(p.retryable(503, "RequestLimitExceeded"));
  CHECK(p.retryable(503, ""));
  CHECK(p.retryable(429, ""));
  CHECK(p.retryable(0, ""));
  CHECK(p.retryable(500, "InternalError"));
  CHECK_FALSE(p.retryable(400, "InvalidParameterValue"));
  CHECK_FALSE(p.retryable(403, "AuthFailure"));
  CHECK_FALSE(p.retryable(400, "DependencyViolation"));
  // Full jitter: within [0, min(cap, base * 2^attempt)].
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto ceiling = std::min<int64_t>(p.cap.count(), p.base.count() << std::min(attempt, 20));
    CHECK(p.delay(attempt, 0).count() == 0);
    CHECK(p.delay(attempt, UINT64_MAX).count() <= ceiling);
    CHECK(p.delay(attempt, static_cast<uint64_t>(ceiling)).count() == ceiling);
  }
  CHECK(p.delay(30, UINT64_MAX).count() <= p.cap.count());
}

TEST_CASE("client: form encoding", "[client]") {
  CHECK(form_encode("a b/c=d&e~f_g.h-i") == "a+b%2Fc%3Dd%26e~f_g.h-i");
  CHECK(form_encode("1+1") == "1%2B1");
  CHECK(form_encode("tag:kubernetes.io/cluster/kthw") == "tag%3Akubernetes.io%2Fcluster%2Fkthw");
  CHECK(form_body("DescribeVpcs", Service::Ec2, {{"Filter.1.Name", "vpc-id"}}) ==
        "Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=vpc-id");
  CHECK(form_body("DescribeLoadBalancers", Service::Elb, {}) == "Action=DescribeLoadBalancers&Version=2015-12-01");
}

TEST_CASE("client: signed request shape; secrets only where curl needs them", "[client]") {
  FakeHttp http;
  http.script.push_back({200, "<DescribeVpcsResponse><vpcSet/></DescribeVpcsResponse>", ""});
  Client c(test_config(), http, {}, [](auto) {});
  c.call(Service::Ec2, "DescribeVpcs", {});
  REQUIRE(http.seen.size() == 1);
  const HttpRequest& r = http.seen[0];
  CHECK(r.url == "http://127.0.0.1:1/");
  CHECK(r.sigv4 == "aws:amz:eu-west-1:ec2");
  CHECK(r.access_key_id == "AKIDTEST");
  CHECK(r.body.find("SECRETTEST") == std::string::npos);
  for (const auto& h : r.headers) CHECK(h.find("SECRETTEST") == std::string::npos);
  CHECK(std::find(r.headers.begin(), r.headers.end(), "X-Amz-Security-Token: SESSIONTOKEN") != r.headers.end());

  http.script.push_back({200, "<DescribeLoadBalancersResponse/>", ""});
  c.call(Service::Elb, "DescribeLoadBalancers", {});
  CHECK(http.seen[1].sigv4 == "aws:amz:eu-west-1:elasticloadbalancing");
  CHECK(http.seen[1].url == "http://127.0.0.1:2/");
}

TEST_CASE("client: throttling and 5xx are retried with backoff, then succeed", "[client]") {
  FakeHttp http;
  http.script = {error_response(503, "RequestLimitExceeded", "Request limit exceeded."),
                 error_response(400, "Throttling", "Rate exceeded"), {502, "<html>bad gateway</html>", ""},
                 {0, "", "Connection refused"}, {200, "<R><ok>yes</ok></R>", ""}};
  std::vector<std::chrono::milliseconds> sleeps;
  Client c(test_config(), http, {}, [&](std::chrono::milliseconds d) { sleeps.push_back(d); }, [] { return UINT64_MAX; });
  auto doc = c.call(Service::Ec2, "DescribeVpcs", {});
  CHECK(doc.get("ok") == "yes");
  CHECK(http.seen.size() == 5);
  REQUIRE(sleeps.size() == 4);
  for (size_t i = 0; i < sleeps.size(); ++i) CHECK(sleeps[i].count() <= (250 << i));  // ceilings double
}

TEST_CASE("client: errors surface with AWS's code and message; no retry for client errors", "[client]") {
  FakeHttp http;
  http.script = {error_response(400, "InvalidParameterValue", "Value (x) for parameter cidrBlock is invalid.")};
  Client c(test_config(), http, {}, [](auto) {});
  try {
    c.call(Service::Ec2, "CreateVpc", {{"CidrBlock", "x"}});
    FAIL("no error");
  } catch (const AwsError& e) {
    CHECK(e.code() == "InvalidParameterValue");
    CHECK(std::string(e.what()) == "ec2 CreateVpc: InvalidParameterValue: Value (x) for parameter cidrBlock is invalid.");
  }
  CHECK(http.seen.size() == 1);

  FakeHttp elb;
  elb.script = {{400, "<ErrorResponse><Error><Type>Sender</Type><Code>LoadBalancerNotFound</Code><Message>One or more "
                      "load balancers not found</Message></Error></ErrorResponse>", ""}};
  Client ce(test_config(), elb, {}, [](auto) {});
  CHECK_THROWS_WITH(ce.call(Service::Elb, "DescribeLoadBalancers", {}),
                    "elbv2 DescribeLoadBalancers: LoadBalancerNotFound: One or more load balancers not found");
}

TEST_CASE("client: retries give up after max_attempts", "[client]") {
  FakeHttp http;  // empty script: always 500 InternalError
  RetryPolicy p;
  p.max_attempts = 3;
  Client c(test_config(), http, p, [](auto) {});
  CHECK_THROWS_WITH(c.call(Service::Ec2, "DescribeVpcs", {}), Catch::Contains("InternalError"));
  CHECK(http.seen.size() == 3);

  FakeHttp down;
  for (int i = 0; i < 3; ++i) down.script.push_back({0, "", "Failed to connect"});
  Client cd(test_config(), down, p, [](auto) {});
  CHECK_THROWS_WITH(cd.call(Service::Ec2, "DescribeVpcs", {}), Catch::Contains("Failed to connect (after 3 attempts)"));
}

TEST_CASE("client: pagination follows nextToken and NextMarker", "[client]") {
  FakeHttp http;
  http.script = {{200, "<DescribeInstancesResponse><reservationSet/><nextToken>t1</nextToken></DescribeInstancesResponse>", ""},
                 {200, "<DescribeInstancesResponse><reservationSet/><nextToken>t2</nextToken></DescribeInstancesResponse>", ""},
                 {200, "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>", ""}};
  Client c(test_config(), http, {}, [](auto) {});
  CHECK(c.call_all(Service::Ec2, "DescribeInstances", {{"Filter.1.Name", "x"}}).size() == 3);
  CHECK(http.seen[0].body.find("NextToken") == std::string::npos);
  CHECK(http.seen[1].body.find("&NextToken=t1") != std::string::npos);
  CHECK(http.seen[2].body.find("&NextToken=t2") != std::string::npos);

  FakeHttp elb;
  elb.script = {{200, "<DescribeListenersResponse><DescribeListenersResult><NextMarker>m</NextMarker>"
                      "</DescribeListenersResult></DescribeListenersResponse>", ""},
                {200, "<DescribeListenersResponse><DescribeListenersResult/></DescribeListenersResponse>", ""}};
  Client ce(test_config(), elb, {}, [](auto) {});
  CHECK(ce.call_all(Service::Elb, "DescribeListeners", {}).size() == 2);
  CHECK(elb.seen[1].body.find("&Marker=m") != std::string::npos);
}

TEST_CASE("client: a create without a client token is not sent twice after a lost answer", "[client]") {
  FakeHttp http;
  http.script = {{0, "", "Empty reply from server"}, {200, "<CreateVpcResponse><vpc><vpcId>vpc-2</vpcId></vpc></CreateVpcResponse>", ""}};
  Client c(test_config(), http, {}, [](std::chrono::milliseconds) {});
  CHECK_THROWS_AS(c.call(Service::Ec2, "CreateVpc", {{"CidrBlock", "10.0.0.0/16"}}, false), LostAnswer);
  CHECK(http.seen.size() == 1);  // the caller looks for what it made; nothing else was sent
  // Other calls are retried after a transport failure as before.
  http.script = {{0, "", "Empty reply from server"}, {200, "<DescribeVpcsResponse/>", ""}};
  http.seen.clear();
  c.call(Service::Ec2, "DescribeVpcs", {});
  CHECK(http.seen.size() == 2);
}
