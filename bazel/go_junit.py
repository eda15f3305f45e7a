#!/usr/bin/python3
"""Turns `go test -json` on stdin into the usual `go test -v` text on stdout
and, when Bazel asks for it ($XML_OUTPUT_FILE), a JUnit XML file with one
test case per Go test, so that the suite counts Go tests one by one.
Exits 1 if any test or package failed."""

import json
import os
import sys
import xml.etree.ElementTree as ET


def main():
    results = {}  # (package, test) -> (action, elapsed)
    failed = False
    for line in sys.stdin:
        try:
            event = json.loads(line)
        except ValueError:
            sys.stdout.write(line)
            continue
        if "Output" in event:
            sys.stdout.write(event["Output"])
        action = event.get("Action")
        if action in ("pass", "fail", "skip"):
            if action == "fail":
                failed = True
            if event.get("Test") and "/" not in event["Test"]:
                results[(event["Package"], event["Test"])] = (action, event.get("Elapsed", 0))
    sys.stdout.flush()
    xml_path = os.environ.get("XML_OUTPUT_FILE")
    if xml_path:
        suites = ET.Element("testsuites")
        suite = ET.SubElement(suites, "testsuite", name="go test")
        for (package, test), (action, elapsed) in sorted(results.items()):
            case = ET.SubElement(suite, "testcase", classname=package, name=test,
                                 time="%.2f" % elapsed)
            if action == "fail":
                ET.SubElement(case, "failure", message="FAIL")
            elif action == "skip":
                ET.SubElement(case, "skipped")
        ET.ElementTree(suites).write(xml_path, encoding="unicode")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
