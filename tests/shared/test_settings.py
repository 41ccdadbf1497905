from __future__ import annotations

import subprocess
import sys

import pytest

from shared.settings import LogFormat, Settings


class TestSettings:
    def test_defaults_match_the_readme(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With no environment, the documented defaults apply."""
        for name in ("MONGO_URL", "MONGO_DB", "AMQP_URL", "VK_API_URL", "LOG_FORMAT"):
            monkeypatch.delenv(name, raising=False)
        settings = Settings()
        assert str(settings.vk_api_url) == "https://api.vk.com/method"
        assert settings.vk_api_version == "5.199"
        assert settings.tracker_interval_seconds == 50
        assert settings.tracker_verify_timeout_seconds == 300
        assert settings.log_format is LogFormat.JSON

    def test_environment_overrides(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each variable is read from the environment, case-insensitively."""
        monkeypatch.setenv("GATEWAY_PORT", "9999")
        monkeypatch.setenv("log_format", "console")
        settings = Settings()
        assert settings.gateway_port == 9999
        assert settings.log_format is LogFormat.CONSOLE

    @pytest.mark.parametrize(("value", "expected"), [
        ("", None), (" ", None), ("http://127.0.0.1:8090", "http://127.0.0.1:8090/")])
    def test_dashboard_sandbox_url_empty_is_unset(self, monkeypatch: pytest.MonkeyPatch,
                                                 value: str, expected: str | None) -> None:
        """Manifests list DASHBOARD_SANDBOX_URL empty: sandbox mode off."""
        monkeypatch.setenv("DASHBOARD_SANDBOX_URL", value)
        url = Settings().dashboard_sandbox_url
        assert (None if url is None else str(url)) == expected

    @pytest.mark.integration  # runs a process
    @pytest.mark.parametrize(("variable", "value"), [
        ("GATEWAY_PORT", "not-a-port"),
        ("NOTIFIER_PORT", "70000"),
        ("LOG_FORMAT", "xml"),
        ("MONGO_URL", "http://example"),
        ("TRACKER_INTERVAL_SECONDS", "-1"),
        ("DASHBOARD_SANDBOX_URL", "127.0.0.1:8090"),
    ])
    def test_bad_value_fails_with_one_line_naming_the_variable(self, variable: str,
                                                               value: str) -> None:
        """A service started with bad configuration exits 2 with one line naming the variable."""
        result = subprocess.run(
            [sys.executable, "-c", "from shared.settings import load_settings; load_settings()"],
            env={"PATH": "/usr/bin:/bin", variable: value}, capture_output=True, text=True,
            check=False,
        )
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"invalid configuration: {variable}:")

    @pytest.mark.integration  # runs a process
    def test_error_line_does_not_echo_secret_values(self) -> None:
        """The error names the variable but never repeats a (possibly secret) value."""
        secret = "amqp-password-should-not-leak"
        result = subprocess.run(
            [sys.executable, "-c", "from shared.settings import load_settings; load_settings()"],
            env={"PATH": "/usr/bin:/bin", "AMQP_URL": f"http://u:{secret}@h"},
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 2
        assert "AMQP_URL" in result.stderr
        assert secret not in result.stderr
