#!/usr/bin/python3
"""Runs unittest files and, when Bazel asks for it ($XML_OUTPUT_FILE), writes
a JUnit XML file with one case per test, so that the suite counts them.

    python unittest_junit.py TEST_FILE.py [TEST_FILE.py ...]

Runs under whatever interpreter starts it (a virtual environment's, for a
package installed there). Exits 1 if any test failed or errored."""

import importlib.util
import os
import sys
import time
import unittest
import xml.etree.ElementTree as ET


class _Recorder(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cases = []  # (id, outcome, seconds)
        self._started = 0.0

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def _record(self, test, outcome):
        self.cases.append((test.id(), outcome, time.monotonic() - self._started))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "fail")

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "fail")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skip")


def main(paths):
    suite = unittest.TestSuite()
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        suite.addTests(unittest.defaultTestLoader.loadTestsFromModule(module))
    result = unittest.TextTestRunner(resultclass=_Recorder, verbosity=2).run(suite)
    xml_path = os.environ.get("XML_OUTPUT_FILE")
    if xml_path:
        root = ET.Element("testsuites")
        tests = ET.SubElement(root, "testsuite", name="unittest")
        for test_id, outcome, seconds in result.cases:
            cls, _, name = test_id.rpartition(".")
            case = ET.SubElement(tests, "testcase", classname=cls, name=name,
                                 time="%.2f" % seconds)
            if outcome == "fail":
                ET.SubElement(case, "failure", message="FAIL")
            elif outcome == "skip":
                ET.SubElement(case, "skipped")
        ET.ElementTree(root).write(xml_path, encoding="unicode")
    return 0 if result.wasSuccessful() and result.testsRun else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
