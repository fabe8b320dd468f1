"""A real WordPress (Debian's package) with the plugin from wp-plugin/, for the tests.

Follows ../shared/reference/wordpress.md: Debian's WordPress copied to a cache folder outside the
repository, its own MariaDB (own datadir and socket, no TCP port: the machine's shared MariaDB
on 3306 is never touched), PHP's built-in server on a free loopback port, set up with php-cli
scripts (no WP-CLI, no Composer, no Docker).

The install (WordPress files, MariaDB datadir, the installed site) is cached between runs in
KYC_WP_ROOT (default /var/cache/kyc-bridge/wordpress as root, ~/.cache/kyc-bridge/wordpress
otherwise); the plugin is copied afresh, re-activated and pointed at this run's bridge each time.
Every process started here is stopped by `close()`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from wp.services import REPO, BridgeServer, free_port, stop_process, wait_http

HERE = Path(__file__).resolve().parent
PLUGIN_SRC = REPO / "wp-plugin"
WP_SOURCE = Path("/usr/share/wordpress")
ADMIN_USER, ADMIN_PASS, ADMIN_EMAIL = "admin", "kycb-admin-Pass-1", "admin@example.test"
DB_PASS = "kycb-wp-db-pass"
PLUGIN_LOG_PATTERN = re.compile(r"PHP (Notice|Warning|Deprecated|Fatal error|Parse error|Strict)[^\n]*(plugins/kyc-bridge/|mu-plugins/kycb-)")
FATAL_PATTERN = re.compile(r"PHP (Fatal error|Parse error)")

MY_CNF = """[mariadbd]
datadir={root}/mysql
socket={root}/run/mysqld.sock
pid-file={root}/run/mysqld.pid
log-error={root}/log/mariadb.err
skip-networking
{user}
skip-name-resolve
innodb_buffer_pool_size=64M
innodb_log_file_size=16M
performance_schema=OFF
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
[client]
socket={root}/run/mysqld.sock
"""

WP_CONFIG = """<?php
// Written by tests/wp/site.py for the plugin's tests. Not a production configuration.
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', '{db_pass}' );
define( 'DB_HOST', 'localhost:{root}/run/mysqld.sock' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
{salts}
$table_prefix = 'wp_';
define( 'WP_HOME', '{url}' );
define( 'WP_SITEURL', '{url}' );
define( 'WP_ENVIRONMENT_TYPE', 'local' );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_AUTO_UPDATE_CORE', false );
define( 'DISABLE_WP_CRON', true );
define( 'FS_METHOD', 'direct' );
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_LOG', '{root}/log/wp-debug.log' );
define( 'WP_DEBUG_DISPLAY', false );
if ( ! defined( 'ABSPATH' ) ) {{
	define( 'ABSPATH', __DIR__ . '/' );
}}
require_once ABSPATH . 'wp-settings.php';
"""


def missing_tools() -> str | None:
    """Why a real WordPress cannot be set up here, or None."""
    needs = {"php": "php-cli", "mariadbd": "mariadb-server", "mariadb-install-db": "mariadb-server",
             "mariadb-admin": "mariadb-client", "mariadb": "mariadb-client", "phpunit": "phpunit"}
    for tool, package in needs.items():
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists() and not Path("/usr/bin", tool).exists():
            return f"{tool} not found (Debian package {package})"
    if not (WP_SOURCE / "wp-settings.php").exists():
        return "Debian's wordpress package is not installed (/usr/share/wordpress missing)"
    probe = subprocess.run(["php", "-r", "echo extension_loaded('mysqli') ? 'y' : 'n';"], capture_output=True,
                           text=True)
    if probe.stdout.strip() != "y":
        return "PHP's mysqli extension is missing (Debian package php-mysql)"
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def default_root() -> Path:
    if os.environ.get("KYC_WP_ROOT"):
        return Path(os.environ["KYC_WP_ROOT"])
    if os.geteuid() == 0:
        return Path("/var/cache/kyc-bridge/wordpress")
    return Path.home() / ".cache" / "kyc-bridge" / "wordpress"


class WordPressSite:
    def __init__(self, bridge: BridgeServer, *, persona_script_url: str, root: Path | None = None):
        self.as_root = os.geteuid() == 0
        self.root = (root or default_root()).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.root / ".lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another run uses the cached site: use a fresh one of our own
            self._lock.close()
            self.root = Path(tempfile.mkdtemp(prefix="kycb-wp-"))
            self._lock = open(self.root / ".lock", "w")  # noqa: SIM115
        self.wp_dir = self.root / "wordpress"
        self.log_dir = self.root / "log"
        self.debug_log = self.log_dir / "wp-debug.log"
        self.bridge = bridge
        self.persona_script_url = persona_script_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mysqld: subprocess.Popen | None = None
        self.server: subprocess.Popen | None = None
        self.timings: dict[str, float] = {}
        self.info: dict = {}
        try:
            self._step("files", self._files)
            self._step("mariadb", self._mariadb)
            self._step("configure", self._configure)
            self._step("serve", self._serve)
        except BaseException:
            self.close()
            raise

    def _step(self, name: str, fn) -> None:  # type: ignore[no-untyped-def]
        start = time.monotonic()
        fn()
        self.timings[name] = round(time.monotonic() - start, 2)

    # --- setup steps ---------------------------------------------------------------------------

    def _chown(self, *paths: Path, user: str = "www-data") -> None:
        if self.as_root:
            subprocess.run(["chown", "-R", f"{user}:{user}", *map(str, paths)], check=True)

    def _files(self) -> None:
        version = (WP_SOURCE / "wp-includes" / "version.php").read_text()
        stamp = self.root / "wordpress.version"
        if not (self.wp_dir / "wp-settings.php").exists() or not stamp.exists() or stamp.read_text() != version:
            shutil.rmtree(self.wp_dir, ignore_errors=True)
            subprocess.run(["cp", "-rL", str(WP_SOURCE), str(self.wp_dir)], check=True)
            for name in (".htaccess", "wp-config.php"):
                (self.wp_dir / name).unlink(missing_ok=True)
            stamp.write_text(version)
        for sub in ("uploads", "plugins", "themes", "mu-plugins"):
            (self.wp_dir / "wp-content" / sub).mkdir(parents=True, exist_ok=True)
        plugin_dir = self.wp_dir / "wp-content" / "plugins" / "kyc-bridge"
        shutil.rmtree(plugin_dir, ignore_errors=True)
        shutil.copytree(PLUGIN_SRC, plugin_dir)
        shutil.copy(HERE / "mu-plugins" / "kycb-test-env.php", self.wp_dir / "wp-content" / "mu-plugins")
        salts = "\n".join(f"define( '{key}', '{secrets.token_hex(32)}' );" for key in (
            "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY", "AUTH_SALT", "SECURE_AUTH_SALT",
            "LOGGED_IN_SALT", "NONCE_SALT"))
        salts_file = self.root / "salts.php"  # kept so that logins survive between runs
        if not salts_file.exists():
            salts_file.write_text(salts)
        (self.wp_dir / "wp-config.php").write_text(WP_CONFIG.format(
            db_pass=DB_PASS, root=self.root, url=self.url, salts=salts_file.read_text()))
        (self.root / "router.php").write_text((HERE / "router.php").read_text())
        self._chown(self.wp_dir / "wp-content")
        self.log_dir.mkdir(exist_ok=True)
        self.debug_log.write_text("")
        os.chmod(self.log_dir, 0o777)
        os.chmod(self.debug_log, 0o666)

    def _mysql(self, sql: str) -> None:
        subprocess.run([_tool("mariadb"), f"--defaults-file={self.root / 'my.cnf'}", "-uroot"], input=sql,
                       text=True, check=True, capture_output=True)

    def _mariadb_up(self) -> bool:
        return subprocess.run([_tool("mariadb-admin"), f"--defaults-file={self.root / 'my.cnf'}", "-uroot",
                               "ping"], capture_output=True).returncode == 0

    def _mariadb(self) -> None:
        for sub in ("mysql", "run"):
            (self.root / sub).mkdir(exist_ok=True)
        os.chmod(self.root, 0o755)
        (self.root / "my.cnf").write_text(MY_CNF.format(root=self.root, user="user=mysql" if self.as_root else ""))
        if self.as_root:
            self._chown(self.root / "mysql", self.root / "run", user="mysql")
        if self._mariadb_up():  # left running by an interrupted run of ours: reuse it, stop it at the end
            self._adopted_mysqld = True
        else:
            self._adopted_mysqld = False
            if not (self.root / "mysql" / "mysql").exists():
                subprocess.run([_tool("mariadb-install-db"), f"--defaults-file={self.root / 'my.cnf'}",
                                "--auth-root-authentication-method=socket", "--skip-name-resolve", "--force",
                                "--skip-test-db"], check=True, capture_output=True)
            self.mysqld = subprocess.Popen(
                [_tool("mariadbd"), f"--defaults-file={self.root / 'my.cnf'}"],
                stdout=open(self.log_dir / "mariadb.out", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self._mariadb_up():
            if self.mysqld is not None and self.mysqld.poll() is not None:
                raise RuntimeError(f"mariadbd exited; see {self.log_dir / 'mariadb.err'}")
            if time.monotonic() > deadline:
                raise RuntimeError("mariadbd did not come up")
            time.sleep(0.3)
        self._mysql(f"""CREATE DATABASE IF NOT EXISTS wordpress CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'wp'@'localhost' IDENTIFIED BY '{DB_PASS}';
GRANT ALL ON wordpress.* TO 'wp'@'localhost';""")

    def php(self, script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a php-cli script against the site (as www-data when we are root)."""
        command = ["php", "-d", f"sendmail_path=tee -a {self.log_dir / 'mail.log'} >/dev/null", str(script), *args]
        full_env = {"WP_URL": self.url, "WP_DIR": str(self.wp_dir), **(env or {})}
        if self.as_root:
            command = ["runuser", "-u", "www-data", "--", "env", *(f"{k}={v}" for k, v in full_env.items()),
                       *command]
            return subprocess.run(command, capture_output=True, text=True, timeout=120)
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, **full_env})

    def _configure(self) -> None:
        script = self.root / "setup-site.php"
        shutil.copy(HERE / "php" / "setup-site.php", script)
        env = {"ADMIN_USER": ADMIN_USER, "ADMIN_PASS": ADMIN_PASS, "ADMIN_EMAIL": ADMIN_EMAIL,
               "BRIDGE_URL": self.bridge.url, "BRIDGE_TOKEN": self.bridge.token,
               "PERSONA_SCRIPT_URL": self.persona_script_url}
        for phase in ("install", "configure"):
            result = self.php(script, phase, env=env)
            if result.returncode != 0 or not result.stdout.strip():
                raise RuntimeError(f"setup-site.php {phase} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                                   f"{result.stderr[-3000:]}")
        self.info = json.loads(result.stdout.strip().splitlines()[-1])

    def _serve(self) -> None:
        command = ["php", "-d", "memory_limit=256M", "-d", "max_execution_time=60",
                   "-d", f"sendmail_path=tee -a {self.log_dir / 'mail.log'} >/dev/null",
                   "-S", f"127.0.0.1:{self.port}", "-t", str(self.wp_dir), str(self.root / "router.php")]
        env = {"PHP_CLI_SERVER_WORKERS": "4"}
        if self.as_root:
            command = ["runuser", "-u", "www-data", "--", "env", "PHP_CLI_SERVER_WORKERS=4", *command]
            env = {}
        self.server = subprocess.Popen(command, stdout=open(self.log_dir / "php-server.log", "ab"),  # noqa: SIM115
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, env={**os.environ, **env})
        wait_http(self.url + "/wp-json/", process=self.server)

    # --- for tests -----------------------------------------------------------------------------

    def set_options(self, **options: object) -> None:
        """Set plugin settings (keys of the kycb_settings option) through a php-cli script."""
        script = self.root / "set-options.php"
        shutil.copy(HERE / "php" / "set-options.php", script)
        result = self.php(script, json.dumps(options))
        assert result.returncode == 0, result.stdout + result.stderr

    def give_back_uploads(self) -> None:
        """Files a root process (PHPUnit) wrote under wp-content go back to the web server's user."""
        self._chown(self.wp_dir / "wp-content")

    def log_offset(self) -> int:
        return self.debug_log.stat().st_size if self.debug_log.exists() else 0

    def plugin_log_problems(self, since: int = 0) -> list[str]:
        """PHP notices, warnings, deprecations and fatals that name the plugin, plus any fatal."""
        if not self.debug_log.exists():
            return []
        with open(self.debug_log, encoding="utf-8", errors="replace") as handle:
            handle.seek(since)
            text = handle.read()
        return [line for line in text.splitlines() if PLUGIN_LOG_PATTERN.search(line) or FATAL_PATTERN.search(line)]

    def close(self) -> None:
        if self.server is not None:
            stop_process(self.server, group=True)
        if self.mysqld is not None:
            stop_process(self.mysqld, group=True)
        elif getattr(self, "_adopted_mysqld", False):
            subprocess.run([_tool("mariadb-admin"), f"--defaults-file={self.root / 'my.cnf'}", "-uroot", "shutdown"],
                           capture_output=True)
        self._lock.close()
