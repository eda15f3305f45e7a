"""Counts test cases from a Bazel run and prints "N passed, M failed".

Reads the build event protocol file for every test target's outcome and each
target's test.xml for its test cases (GoogleTest and go test report cases; a
target whose runner reports none counts as one case). A target that failed to
build, timed out or did not run counts as one failure. Exits 1 when anything
failed or when no test ran at all.
"""

import json
import os
import sys
import xml.etree.ElementTree as ET


def cases_in(xml_path):
    """Returns (passed, failed) test cases in a JUnit XML file, or None."""
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError):
        return None
    passed = failed = 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.get("status") == "notrun" or case.find("skipped") is not None:
            continue
        else:
            passed += 1
    if passed + failed == 0:
        return None
    return passed, failed


def count_run(bep_path, testlogs, prefix):
    """Counts one `bazel test` run; returns (passed, failed)."""
    configured = set()
    outcome = {}
    if not os.path.exists(bep_path):
        print("%sno build events: the run did not start" % prefix)
        return 0, 1
    with open(bep_path) as f:
        for line in f:
            event = json.loads(line)
            eid = event.get("id", {})
            # Test targets carry a testSize; a target that then fails to
            # build gets no testSummary and counts as a failure below.
            if "targetConfigured" in eid and "testSize" in event.get("configured", {}):
                configured.add(eid["targetConfigured"]["label"])
            if "testSummary" in eid:
                label = eid["testSummary"]["label"]
                outcome[label] = event.get("testSummary", {}).get("overallStatus", "NO_STATUS")

    passed = failed = 0
    for label in sorted(configured | set(outcome)):
        status = outcome.get(label, "NO_STATUS")
        pkg, _, name = label.lstrip("/").partition(":")
        counted = cases_in(os.path.join(testlogs, pkg, name, "test.xml"))
        if status == "PASSED" and counted and counted[1] == 0:
            passed += counted[0]
        elif status == "PASSED":
            passed += 1
        elif counted and counted[1] > 0:
            passed += counted[0]
            failed += counted[1]
        else:
            failed += 1
        print("%-60s %s" % (prefix + label, status))
    return passed, failed


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit("usage: count_results.py BEP_JSON TESTLOGS PREFIX [BEP_JSON TESTLOGS PREFIX ...]")
    passed = failed = 0
    for i in range(0, len(args), 3):
        p, f = count_run(args[i], args[i + 1], args[i + 2])
        passed += p
        failed += f
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
