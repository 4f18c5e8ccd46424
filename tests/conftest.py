import matplotlib

# Tests that draw in this process draw off screen. (Not through MPLBACKEND: notebook kernels
# started by the tests inherit the environment and would then show no figures.)
matplotlib.use("Agg")


def pytest_sessionfinish(session, exitstatus):
    # pytest exits 5 when it collected no tests; for this project that is a failure, never a pass.
    if exitstatus == 5:
        session.exitstatus = 1
