#include "aws/xml.h"

#include <catch2/catch.hpp>

#include "base/error.h"

using kb::aws::parse_xml;

TEST_CASE("xml: an EC2 response with nested item lists", "[xml]") {
  auto doc = parse_xml(R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>abc</requestId>
  <vpcSet>
    <item><vpcId>vpc-1</vpcId><cidrBlock>10.0.0.0/16</cidrBlock>
      <tagSet><item><key>Name</key><value>a &amp; b</value></item></tagSet></item>
    <item><vpcId>vpc-2</vpcId><cidrBlock/></item>
  </vpcSet>
  <nextToken>tok</nextToken>
</DescribeVpcsResponse>)");
  CHECK(doc.name == "DescribeVpcsResponse");
  auto vpcs = doc.items("vpcSet");
  REQUIRE(vpcs.size() == 2);
  CHECK(vpcs[0]->get("vpcId") == "vpc-1");
  CHECK(vpcs[0]->items("tagSet")[0]->get("value") == "a & b");
  CHECK(vpcs[1]->get("cidrBlock").empty());
  CHECK(vpcs[1]->get("missing/path").empty());
  CHECK(doc.get("nextToken") == "tok");
  CHECK(doc.text.empty());  // indentation between children is dropped
}

TEST_CASE("xml: ELBv2 member lists and error documents", "[xml]") {
  auto doc = parse_xml(
      "<DescribeLoadBalancersResponse><DescribeLoadBalancersResult><LoadBalancers>"
      "<member><DNSName>kthw-api-1.elb.amazonaws.com</DNSName><State><Code>active</Code></State></member>"
      "</LoadBalancers><NextMarker>m2</NextMarker></DescribeLoadBalancersResult></DescribeLoadBalancersResponse>");
  auto lbs = doc.items("DescribeLoadBalancersResult/LoadBalancers");
  REQUIRE(lbs.size() == 1);
  CHECK(lbs[0]->get("State/Code") == "active");
  CHECK(doc.get("DescribeLoadBalancersResult/NextMarker") == "m2");

  auto err = parse_xml("<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>The vpc ID 'vpc-x' "
                       "does not exist</Message></Error></Errors><RequestID>r</RequestID></Response>");
  REQUIRE(err.descendant("Error"));
  CHECK(err.descendant("Error")->get("Code") == "InvalidVpcID.NotFound");
}

TEST_CASE("xml: entities, character references, CDATA, comments, attributes", "[xml]") {
  auto doc = parse_xml("<a x='1>2' y=\"/\"><!-- c --><b>&lt;&gt;&quot;&apos;&#65;&#x42;&#xe9;</b><c><![CDATA[<raw&>]]></c>"
                       "<d/><e attr=\"v\"/></a>");
  CHECK(doc.get("b") == "<>\"'AB\xc3\xa9");
  CHECK(doc.get("c") == "<raw&>");
  REQUIRE(doc.child("d"));
  CHECK(doc.child("d")->text.empty());
  CHECK(doc.child("e"));
}

TEST_CASE("xml: malformed input is an error, never a partial tree", "[xml]") {
  for (const char* bad : {"", "just text", "<a>", "<a></b>", "<a><b></a>", "<a>&bogus;</a>", "<a>&#xZZ;</a>",
                          "<a x=1></a>", "<a></a><b></b>", "<a><!-- open </a>", "<a>&#x110000;</a>"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_xml(bad), kb::Error);
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<x>";
  CHECK_THROWS_WITH(parse_xml(deep), Catch::Contains("too deep"));
}
