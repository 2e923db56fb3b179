import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long runs (multi-process, quality); still run in CI")
