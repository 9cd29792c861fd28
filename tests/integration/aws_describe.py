#!/usr/bin/env python3
"""What AWS (moto) reports for one cluster, described with boto3 independently of kbundle's own
parsing, as JSON on stdout: counts of everything tagged kubernetes.io/cluster/CLUSTER=owned, the
exact rules of every security group in the cluster's VPCs (sources named by group name), the load
balancer's security groups, the target group's attributes, and each instance's metadata options
and root volume encryption.
usage: aws_describe.py ENDPOINT_URL CLUSTER
       aws_describe.py ENDPOINT_URL -      one cluster name per input line, one JSON line out each
                                           (saves boto3's start-up in loops)"""
import json
import sys

import boto3

endpoint, cluster = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1")
ec2 = boto3.client("ec2", **kw)
elb = boto3.client("elbv2", **kw)


def describe(cluster):
    owned = [{"Name": f"tag:kubernetes.io/cluster/{cluster}", "Values": ["owned"]}]

    vpcs = [v["VpcId"] for v in ec2.describe_vpcs(Filters=owned)["Vpcs"]]
    out = {
        "vpcs": vpcs,
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=owned)["Subnets"]],
        "internetGateways": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=owned)["InternetGateways"]],
        "routeTables": [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=owned)["RouteTables"]],
        "keyPairs": [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]],
    }
    groups = []
    if vpcs:
        groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": vpcs}])["SecurityGroups"]
    name_of = {g["GroupId"]: g["GroupName"] for g in groups}

    def rules(perms):
        out = []
        for p in perms:
            ports = "all" if p["IpProtocol"] == "-1" else f'{p.get("FromPort")}-{p.get("ToPort")}'
            head = f'{p["IpProtocol"]} {ports} '
            out += [head + r["CidrIp"] for r in p.get("IpRanges", [])]
            out += [head + r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])]
            out += [head + r["PrefixListId"] for r in p.get("PrefixListIds", [])]
            out += [head + "sg:" + name_of.get(r["GroupId"], r["GroupId"]) for r in p.get("UserIdGroupPairs", [])]
        return sorted(out)

    out["securityGroups"] = {g["GroupName"]: {"id": g["GroupId"], "ingress": rules(g.get("IpPermissions", [])),
                                              "egress": rules(g.get("IpPermissionsEgress", []))}
                             for g in groups if g["GroupName"] != "default"}

    instances = []
    for r in ec2.describe_instances(Filters=owned + [{"Name": "instance-state-name",
                                                     "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]:
        for i in r["Instances"]:
            tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            vols = [m["Ebs"]["VolumeId"] for m in i.get("BlockDeviceMappings", [])]
            enc = [v["Encrypted"] for v in ec2.describe_volumes(VolumeIds=vols)["Volumes"]] if vols else []
            mo = i.get("MetadataOptions", {})
            instances.append({"id": i["InstanceId"], "node": tags.get("kbundle:node"), "publicIp": i.get("PublicIpAddress"),
                              "httpTokens": mo.get("HttpTokens"), "hopLimit": mo.get("HttpPutResponseHopLimit"),
                              "rootDevice": i.get("RootDeviceName"),
                              "volumes": [m["DeviceName"] for m in i.get("BlockDeviceMappings", [])], "encrypted": enc})
    out["instances"] = instances

    lbs = [lb for lb in elb.describe_load_balancers()["LoadBalancers"]]
    out["loadBalancers"] = [{"name": lb["LoadBalancerName"], "securityGroups": sorted(name_of.get(g, g) for g in lb.get("SecurityGroups", [])),
                             "listeners": len(elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"])}
                            for lb in lbs]
    tgs = elb.describe_target_groups()["TargetGroups"]
    out["targetGroups"] = [{"name": t["TargetGroupName"],
                            "attributes": {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(
                                TargetGroupArn=t["TargetGroupArn"])["Attributes"]},
                            "targets": sorted(d["Target"]["Id"] for d in elb.describe_target_health(
                                TargetGroupArn=t["TargetGroupArn"])["TargetHealthDescriptions"])}
                           for t in tgs]
    return out


if cluster != "-":
    print(json.dumps(describe(cluster), indent=1, sort_keys=True))
else:
    for line in sys.stdin:
        print(json.dumps(describe(line.strip()), sort_keys=True), flush=True)
