import hashlib

import pytest

from appointments_gateway.settings import (
    SANDBOX_SETTINGS,
    SETTINGS,
    ConfigError,
    SandboxSettings,
    Settings,
    is_loopback,
)


def test_defaults_run_on_the_sandbox_in_service_mode_on_loopback():
    settings = Settings.load(environ={})
    assert settings.upstream == "sandbox"
    assert settings.auth == "service"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.uses_sandbox


def test_flags_win_over_environment():
    settings = Settings.load(
        environ={"GATEWAY_PORT": "9000", "GATEWAY_LOG_LEVEL": "debug"},
        overrides={"port": "9100"},
    )
    assert settings.port == 9100
    assert settings.log_level == "debug"


def test_every_setting_has_an_environment_variable_and_a_flag():
    names = {s.name for s in SETTINGS}
    assert {"upstream", "api_key", "auth", "user_agent", "host", "port"} <= names
    envs = {s.env for s in SETTINGS}
    assert {
        "GATEWAY_UPSTREAM",
        "CLINIKO_API_KEY",
        "GATEWAY_AUTH",
        "GATEWAY_USER_AGENT",
        "GATEWAY_HOST",
        "GATEWAY_PORT",
    } <= envs
    for setting in (*SETTINGS, *SANDBOX_SETTINGS):
        assert setting.flag.startswith("--")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT: a port is 0..65535, got 70000"),
        ({"GATEWAY_AUTH": "magic"}, "GATEWAY_AUTH: expected 'service' or 'forward', got 'magic'"),
        ({"GATEWAY_UPSTREAM": "ftp://x"}, "GATEWAY_UPSTREAM: expected 'sandbox', 'cliniko'"),
        ({"GATEWAY_WORKERS": "0"}, "GATEWAY_WORKERS: expected a whole number of at least 1"),
        ({"GATEWAY_GRAPHIQL": "maybe"}, "GATEWAY_GRAPHIQL: expected true or false"),
    ],
)
def test_bad_values_name_the_setting_and_quote_the_value(env, message):
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ=env)
    assert str(caught.value).startswith(message)


def test_the_api_key_is_secret_and_never_in_repr():
    secret = [s.env for s in SETTINGS if s.secret]
    assert secret == [
        "CLINIKO_API_KEY",
        "GATEWAY_TOKENS",
        "GATEWAY_OPS_TOKENS",
        "GATEWAY_REDIS_URL",
    ]
    assert "sk-secret" not in repr(Settings(api_key="sk-secret-au1"))


def test_service_mode_needs_a_key_off_the_sandbox():
    with pytest.raises(ConfigError, match="CLINIKO_API_KEY is required"):
        Settings.load(environ={"GATEWAY_UPSTREAM": "http://127.0.0.1:8911/v1"})
    settings = Settings.load(
        environ={"GATEWAY_UPSTREAM": "http://127.0.0.1:8911/v1", "GATEWAY_AUTH": "forward"}
    )
    assert settings.api_key is None


@pytest.mark.parametrize("upstream", ["cliniko", "https://api.uk1.cliniko.com/v1"])
@pytest.mark.parametrize("user_agent", [None, "curl/8.0", "Team (not-an-email)"])
def test_real_cliniko_needs_a_name_and_email_user_agent(upstream, user_agent):
    env = {"GATEWAY_UPSTREAM": upstream, "CLINIKO_API_KEY": "k-au1"}
    if user_agent:
        env["GATEWAY_USER_AGENT"] = user_agent
    with pytest.raises(ConfigError, match="GATEWAY_USER_AGENT must be 'Name"):
        Settings.load(environ=env)
    env["GATEWAY_USER_AGENT"] = "Clinic App (dev@clinic.example)"
    assert Settings.load(environ=env).talks_to_cliniko


def test_a_service_key_without_a_valid_shard_is_refused_without_echoing_it():
    env = {
        "GATEWAY_UPSTREAM": "cliniko",
        "CLINIKO_API_KEY": "secretbody-zz999",
        "GATEWAY_USER_AGENT": "Clinic App (dev@clinic.example)",
    }
    with pytest.raises(ConfigError, match="valid shard suffix") as caught:
        Settings.load(environ=env)
    assert "secretbody" not in str(caught.value)


def test_service_mode_refuses_a_public_interface_without_gateway_tokens():
    public = {"GATEWAY_HOST": "0.0.0.0", "GATEWAY_ALLOWED_HOSTS": "gateway.example.com"}
    with pytest.raises(ConfigError, match=r"not a loopback address.*GATEWAY_TOKENS"):
        Settings.load(environ=public)
    assert Settings.load(environ={**public, "GATEWAY_AUTH": "forward"})
    with_tokens = Settings.load(environ={**public, "GATEWAY_TOKENS": TOKEN})
    assert with_tokens.gateway_tokens == (hashlib.sha256(TOKEN.encode()).hexdigest(),)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.7", "::", "gateway.internal"])
def test_a_public_interface_needs_the_host_names_it_serves(host):
    env = {"GATEWAY_HOST": host, "GATEWAY_AUTH": "forward"}
    with pytest.raises(ConfigError, match="GATEWAY_ALLOWED_HOSTS") as caught:
        Settings.load(environ=env)
    assert str(caught.value).startswith(f"GATEWAY_HOST={host!r} is not a loopback address")
    settings = Settings.load(environ={**env, "GATEWAY_ALLOWED_HOSTS": "gateway.example.com"})
    assert not settings.is_loopback
    assert settings.allowed_hosts == ("gateway.example.com",)


def test_allowed_hosts_are_normalised_and_survive_the_trip_to_worker_processes():
    settings = Settings.load(
        environ={
            "GATEWAY_ALLOWED_HOSTS": " Gateway.Example.com, *.internal.example ,10.0.0.7,"
            "::1,[2001:DB8::1],app_1,gateway.example.com"
        }
    )
    assert settings.allowed_hosts == (
        "gateway.example.com",
        "*.internal.example",
        "10.0.0.7",
        "[::1]",
        "[2001:db8::1]",
        "app_1",
    )
    assert settings.is_loopback
    assert Settings.load(environ=settings.to_environ()) == settings
    assert "GATEWAY_ALLOWED_HOSTS" not in Settings().to_environ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("*", "'*' is not allowed"),
        ("gateway.example.com,*", "'*' is not allowed"),
        ("https://gateway.example.com", "expected host names such as"),
        ("gateway.example.com:8443", "expected host names such as"),
        ("gateway.example.com/graphql", "expected host names such as"),
        ("*example.com", "expected host names such as"),
        ("api.*.example.com", "expected host names such as"),
        ("gateway.example.com.", "expected host names such as"),
        ("gäteway.example", "expected host names such as"),
    ],
)
def test_allowed_hosts_must_be_host_names_and_never_a_bare_star(raw, reason):
    with pytest.raises(ConfigError, match="GATEWAY_ALLOWED_HOSTS") as caught:
        Settings.load(environ={"GATEWAY_ALLOWED_HOSTS": raw})
    assert reason in str(caught.value)
    with pytest.raises(ConfigError, match="'\\*' is not allowed"):
        Settings(allowed_hosts=("*",))


TOKEN = "tok-" + "x" * 40


def test_gateway_tokens_are_kept_as_digests_and_round_trip_without_plain_text():
    digest = hashlib.sha256(b"another-long-random-token-value").hexdigest()
    settings = Settings.load(
        environ={"GATEWAY_TOKENS": f" {TOKEN} , sha256:{digest.upper()},{TOKEN}"}
    )
    assert settings.gateway_tokens == (hashlib.sha256(TOKEN.encode()).hexdigest(), digest)
    assert TOKEN not in repr(settings)
    environ = settings.to_environ()
    assert TOKEN not in str(environ)
    assert environ["GATEWAY_TOKENS"].startswith("sha256:")
    assert Settings.load(environ=environ) == settings


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            "short-secret-token",
            "entry 1 is shorter than 24 characters (or not printable); use long random tokens",
        ),
        (f"{TOKEN},sha256:abc123", "entry 2 is not 'sha256:' and 64 hex digits"),
        (" , ", "no tokens given"),
    ],
)
def test_bad_gateway_tokens_are_refused_without_echoing_them(raw, reason):
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={"GATEWAY_TOKENS": raw})
    assert str(caught.value) == f"GATEWAY_TOKENS: {reason}"
    assert "short-secret" not in str(caught.value)
    assert "abc123" not in str(caught.value)


def test_gateway_tokens_need_service_mode():
    with pytest.raises(ConfigError, match="service auth mode only"):
        Settings.load(environ={"GATEWAY_AUTH": "forward", "GATEWAY_TOKENS": TOKEN})


def test_to_environ_round_trips():
    settings = Settings(
        upstream="http://127.0.0.1:1/v1",
        api_key="abc-au2",
        user_agent="Team (team@example.com)",
        port=0,
        graphiql=False,
        upstream_timeout=2.5,
        upstream_rate_limit=120,
        upstream_max_wait=0.5,
    )
    assert Settings.load(environ=settings.to_environ()) == settings


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_sandbox_settings_parse_their_knobs():
    settings = SandboxSettings.load(
        environ={"SANDBOX_RATE_LIMIT": "0", "SANDBOX_LATENCY_MS": "50"},
        overrides={"fault_rate": "0.25"},
    )
    assert (settings.rate_limit, settings.latency_ms, settings.fault_rate) == (0, 50.0, 0.25)
    with pytest.raises(ConfigError, match="--fault-rate: expected a fraction"):
        SandboxSettings.load(environ={}, overrides={"fault_rate": "2"})


def test_upstream_budget_settings_default_to_cliniko_s_limit():
    settings = Settings.load(environ={})
    assert (settings.upstream_rate_limit, settings.upstream_max_wait) == (200, 5.0)
    settings = Settings.load(
        environ={"GATEWAY_UPSTREAM_RATE_LIMIT": "150"}, overrides={"upstream_max_wait": "0"}
    )
    assert settings.upstream_rate_limit == 150  # one process holds the whole budget
    assert settings.upstream_max_wait == 0.0
    assert Settings.load(environ={"GATEWAY_UPSTREAM_RATE_LIMIT": "0"}).upstream_rate_limit == 0


@pytest.mark.parametrize("workers", ["2", "8"])
def test_more_than_one_worker_needs_shared_state(workers):
    """Each worker would keep its own idempotency keys and budget: a retry could book twice."""
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={"GATEWAY_WORKERS": workers})
    message = str(caught.value)
    assert message.startswith(f"GATEWAY_WORKERS={workers} needs GATEWAY_REDIS_URL")
    assert "createAppointment could book twice" in message
    assert Settings.load(environ={"GATEWAY_WORKERS": "1"}).workers == 1
    shared = Settings.load(
        environ={"GATEWAY_WORKERS": workers, "GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0"}
    )
    assert shared.workers == int(workers)


@pytest.mark.parametrize("url", ["http://x:pw-9f3@h:6379", "redis://", "x:pw-9f3@h:6379"])
def test_redis_url_must_be_redis_or_rediss_and_is_never_echoed(url):
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={"GATEWAY_REDIS_URL": url})
    assert "expected a redis:// or rediss:// URL" in str(caught.value)
    assert "pw-9f3" not in str(caught.value)


def test_redis_url_with_password_is_kept_out_of_repr():
    url = "rediss://gw:s3cret-pass@redis.internal:6380/2"
    settings = Settings.load(environ={"GATEWAY_REDIS_URL": url})
    assert settings.redis_url == url
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_UPSTREAM_RATE_LIMIT": "1"}, "GATEWAY_UPSTREAM_RATE_LIMIT: expected 0 (off)"),
        ({"GATEWAY_UPSTREAM_RATE_LIMIT": "-5"}, "GATEWAY_UPSTREAM_RATE_LIMIT: expected 0 (off)"),
        ({"GATEWAY_UPSTREAM_MAX_WAIT": "-1"}, "GATEWAY_UPSTREAM_MAX_WAIT: expected a number"),
    ],
)
def test_bad_upstream_budget_settings_are_refused(env, message):
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ=env)
    assert str(caught.value).startswith(message)
