//! Login, token request, status, rotation, logout and the vault's refusals, through the binary
//! against a simulator child process — and a search for plaintext secrets in every file of the
//! data directory and every line the commands printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{Run, assert_one_line_error, stoxide};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Http {
    status: u16,
    location: Option<String>,
    body: String,
}

/// One HTTP/1.1 request over a plain socket (no redirects followed).
fn http(method: &str, url: &str, form: Option<&str>) -> Http {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    let body = form.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).expect("status line");
    let location = answer
        .lines()
        .find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
        .map(|l| l.trim().to_owned());
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Http { status, location, body }
}

fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url_decode_pairs(q)
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("utf8")
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A simulator whose apps redirect to free loopback ports.
struct Sim {
    child: Child,
    base: String,
    own_redirect: String,
    vendor_redirect: String,
    notifier_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sim() -> Sim {
    let dir = tempfile::tempdir().expect("tempdir");
    let (own, vendor, notifier) = (free_port(), free_port(), free_port());
    let own_redirect = format!("http://127.0.0.1:{own}/callback");
    let vendor_redirect = format!("http://127.0.0.1:{vendor}/upstox/callback");
    let config = format!(
        r#"token_request_auto_approve_ms = 300
[[apps]]
client_id = "sim-app-1"
client_secret = "sim-secret-1"
redirect_uri = "{own_redirect}"
notifier_url = "http://127.0.0.1:{notifier}/upstox/notifier"
[[apps]]
client_id = "sim-vendor-app"
client_secret = "sim-vendor-secret"
redirect_uri = "{vendor_redirect}"
"#
    );
    let path = dir.path().join("sim.toml");
    std::fs::write(&path, config).expect("config");
    let (child, banner) = super::spawn_with_banner(
        stoxide()
            .args(["sim", "--addr", "127.0.0.1:0", "--sim-config"])
            .arg(&path)
            .stderr(Stdio::null()),
    );
    Sim {
        child,
        base: banner["base_url"].as_str().expect("base").to_owned(),
        own_redirect,
        vendor_redirect,
        notifier_port: notifier,
        _dir: dir,
    }
}

/// Commands against one simulator and one data directory; every output is kept for the
/// plaintext search.
struct User<'a> {
    sim: &'a Sim,
    data: PathBuf,
    printed: Vec<String>,
}

impl<'a> User<'a> {
    fn new(sim: &'a Sim, data: &Path) -> Self {
        Self {
            sim,
            data: data.to_owned(),
            printed: Vec::new(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = stoxide();
        c.env("STOXIDE_DATA_DIR", &self.data)
            .env("UPSTOX_BASE_URL", &self.sim.base)
            .env("STOXIDE_LOG", "debug");
        c
    }

    fn app_env(c: &mut Command, vendor: bool, sim: &Sim) {
        if vendor {
            c.env("UPSTOX_API_KEY", "sim-vendor-app")
                .env("UPSTOX_API_SECRET", "sim-vendor-secret")
                .env("UPSTOX_REDIRECT_URI", &sim.vendor_redirect);
        } else {
            c.env("UPSTOX_API_KEY", "sim-app-1")
                .env("UPSTOX_API_SECRET", "sim-secret-1")
                .env("UPSTOX_REDIRECT_URI", &sim.own_redirect);
        }
    }

    fn run(&mut self, args: &[&str]) -> Run {
        self.run_keep(args, true)
    }

    /// Without debug logs, for the one-line error checks.
    fn run_plain(&mut self, args: &[&str]) -> Run {
        let mut c = self.cmd();
        c.env("STOXIDE_LOG", "warn");
        let out = c.args(args).output().expect("run");
        let r = Run::from(out);
        self.printed.push(r.stdout.clone());
        self.printed.push(r.stderr.clone());
        r
    }

    fn run_keep(&mut self, args: &[&str], keep: bool) -> Run {
        let out = self.cmd().args(args).output().expect("run");
        let r = Run::from(out);
        if keep {
            self.printed.push(r.stdout.clone());
        }
        self.printed.push(r.stderr.clone());
        r
    }

    /// Starts `stoxide login --no-browser`; answers the child and the dialog URL it printed.
    fn start_login(&self, vendor: bool, extra: &[&str]) -> (Child, String) {
        let mut c = self.cmd();
        Self::app_env(&mut c, vendor, self.sim);
        let mut child = c
            .args(["login", "--no-browser"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("login");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let url = loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).expect("read") > 0, "login printed no URL");
            if line.starts_with("http") {
                break line.trim().to_owned();
            }
        };
        // Keep the rest of stdout for finish().
        child.stdout = None;
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            rest
        });
        (child, url)
    }

    fn finish(&mut self, child: Child) -> Run {
        let out = child.wait_with_output().expect("wait");
        let r = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        };
        self.printed.push(r.stderr.clone());
        r
    }

    /// Logs `user` in through the dialog: checks the form, submits it, answers the redirect.
    fn approve(&self, url: &str, user: &str, pin: &str) -> String {
        let form = http("GET", url, None);
        assert_eq!(form.status, 200, "{}", form.body);
        assert!(form.body.contains("login-form"), "{}", form.body);
        let q = query(url);
        let get = |k: &str| {
            q.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let body = encode(&[
            ("client_id", &get("client_id")),
            ("redirect_uri", &get("redirect_uri")),
            ("state", &get("state")),
            ("response_type", "code"),
            ("user_id", user),
            ("pin", pin),
        ]);
        let submit = http(
            "POST",
            &format!("{}/v2/login/authorization/dialog", self.sim.base),
            Some(&body),
        );
        assert_eq!(submit.status, 302, "{}", submit.body);
        submit.location.expect("Location")
    }

    fn login(&mut self, vendor: bool, user: &str, pin: &str) {
        let (child, url) = self.start_login(vendor, &[]);
        let redirect = self.approve(&url, user, pin);
        let page = http("GET", &redirect, None);
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(&format!("Logged in as {user}")), "{}", page.body);
        let r = self.finish(child);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}

/// Logs `user` in to `sim-app-1` outside stoxide (as another tool would); answers the new token.
fn login_elsewhere(sim: &Sim, user: &str, pin: &str) -> String {
    let body = encode(&[
        ("client_id", "sim-app-1"),
        ("redirect_uri", &sim.own_redirect),
        ("state", "elsewhere"),
        ("response_type", "code"),
        ("user_id", user),
        ("pin", pin),
    ]);
    let submit = http(
        "POST",
        &format!("{}/v2/login/authorization/dialog", sim.base),
        Some(&body),
    );
    let loc = submit.location.expect("Location");
    let code = query(&loc).into_iter().find(|(k, _)| k == "code").expect("code").1;
    let form = encode(&[
        ("code", &code),
        ("client_id", "sim-app-1"),
        ("client_secret", "sim-secret-1"),
        ("redirect_uri", &sim.own_redirect),
        ("grant_type", "authorization_code"),
    ]);
    let answer = http(
        "POST",
        &format!("{}/v2/login/authorization/token", sim.base),
        Some(&form),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let v: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    v["access_token"].as_str().expect("token").to_owned()
}

fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).expect("read")));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn several_accounts_log_in_rotate_and_log_out_and_no_secret_is_ever_in_clear() {
    let sim = sim();
    let data = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let mut u = User::new(&sim, &data.path().join("stoxide"));

    // A callback that no login issued is refused, and the login goes on waiting.
    let (child, url) = u.start_login(false, &[]);
    let forged = http("GET", &format!("{}?code=abc&state=forged", sim.own_redirect), None);
    assert_eq!(forged.status, 400);
    assert!(forged.body.contains("unknown"), "{}", forged.body);
    let redirect = u.approve(&url, "SIM001", "123456");
    assert!(http("GET", &redirect, None).body.contains("Logged in as SIM001"));
    assert_eq!(u.finish(child).code, 0);

    // Vendor mode: one app, two users.
    u.login(true, "SIM002", "234567");
    u.login(true, "SIM003", "345678");

    let status = u.run(&["--json", "token", "status", "--all"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 3, "{v}");
    for (row, id) in rows.iter().zip(["SIM001", "SIM002", "SIM003"]) {
        assert_eq!(row["account"], id);
        assert_eq!(row["state"], "valid", "{row}");
        assert!(
            row["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("valid, expires in")),
            "{row}"
        );
    }
    assert_eq!(rows[1]["client_id"], "sim-vendor-app");

    // Commands act for the chosen account with its stored base URL and token.
    let mut c = u.cmd();
    c.env_remove("UPSTOX_BASE_URL");
    let profile = c
        .args(["--account", "SIM002", "--json", "profile"])
        .output()
        .expect("run");
    assert!(profile.status.success(), "{}", String::from_utf8_lossy(&profile.stderr));
    assert!(String::from_utf8_lossy(&profile.stdout).contains("\"SIM002\""));
    assert_one_line_error(&u.run_plain(&["profile"]), "holds 3 accounts");
    assert_one_line_error(
        &u.run_plain(&["--account", "SIM404", "profile"]),
        "no account \"SIM404\"",
    );

    // Export (a deliberate plaintext copy) outside the data directory.
    let t1_file = elsewhere.path().join("sim001.token");
    let r = u.run(&[
        "--account",
        "SIM001",
        "token",
        "export",
        "--out",
        t1_file.to_str().expect("path"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("in clear"), "{}", r.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&t1_file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let t1 = std::fs::read_to_string(&t1_file).expect("read").trim().to_owned();
    let t2 = u
        .run_keep(&["--account", "SIM002", "token", "export"], false)
        .stdout
        .trim()
        .to_owned();
    assert!(t2.starts_with("sim_at_"), "{t2}");

    // A login elsewhere revokes the vault's token; status says so and what to do.
    let t1b = login_elsewhere(&sim, "SIM001", "123456");
    let revoked = u.run(&["--account", "SIM001", "token", "status", "--refresh"]);
    assert_ne!(revoked.code, 0);
    assert!(
        revoked.stdout.contains("revoked by a newer login"),
        "{}",
        revoked.stdout
    );
    assert!(
        revoked.stdout.contains("stoxide login --account SIM001"),
        "{}",
        revoked.stdout
    );

    // The old token cannot be imported; the new one can.
    let r = u.run_plain(&["token", "import", t1_file.to_str().expect("path")]);
    assert_one_line_error(&r, "nothing was imported");
    let t1b_file = elsewhere.path().join("new.token");
    std::fs::write(&t1b_file, format!("{t1b}\n")).expect("write");
    let r = u.run(&[
        "--account",
        "SIM001",
        "token",
        "import",
        t1b_file.to_str().expect("path"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("still holds the token in clear"), "{}", r.stderr);
    assert!(r.stdout.contains("imported the token of SIM001"), "{}", r.stdout);

    // Rotation keeps every token readable under a new key.
    let key_before = std::fs::read(u.data.join("vault.key")).expect("key");
    let r = u.run(&["vault", "rotate-key"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("re-encrypted 5 secret(s)"), "{}", r.stdout);
    assert_ne!(std::fs::read(u.data.join("vault.key")).expect("key"), key_before);
    let after = u.run_keep(&["--account", "SIM001", "token", "export"], false);
    assert_eq!(after.stdout.trim(), t1b);
    let status = u.run(&["token", "status", "--all", "--refresh"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);

    // Logout revokes at Upstox and wipes the vault's copy.
    let r = u.run(&["--account", "SIM003", "logout"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Upstox revoked the token"), "{}", r.stdout);
    let r = u.run(&["--account", "SIM003", "token", "status"]);
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains("no token"), "{}", r.stdout);
    let r = u.run(&["--account", "SIM002", "doctor"]);
    assert!(
        r.stdout.contains("✓ vault key present and right") && r.stdout.contains("✓ token decryptable"),
        "{}",
        r.stdout
    );

    // Not one secret in clear: not in the vault's files, not in anything a command printed
    // (with debug logging on), exports aside.
    let secrets = [
        t1.as_str(),
        t1b.as_str(),
        t2.as_str(),
        "sim-secret-1",
        "sim-vendor-secret",
    ];
    let files = files_under(&u.data);
    assert!(files.iter().any(|(p, _)| p.ends_with("vault.db")));
    let printed = u.printed.join("\n");
    assert!(printed.contains("stored a token"), "debug logs were captured");
    for s in secrets {
        for (path, bytes) in &files {
            assert!(!contains(bytes, s.as_bytes()), "{s} in clear in {}", path.display());
        }
        assert!(!printed.contains(s), "{s} printed");
    }
}

#[test]
fn token_request_and_refused_callbacks() {
    let sim = sim();
    let data = tempfile::tempdir().expect("tempdir");
    let mut u = User::new(&sim, data.path());

    // The v3 request: the simulator approves and POSTs the token to our webhook.
    let mut c = u.cmd();
    User::app_env(&mut c, false, &sim);
    let listen = format!("127.0.0.1:{}", sim.notifier_port);
    let out = c
        .args(["--json", "login", "--request", "--listen", &listen, "--timeout", "30"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["account"], "SIM001");
    assert_eq!(v["origin"], "token-request");
    let status = u.run(&["--json", "token", "status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("\"valid\""), "{}", status.stdout);

    // Asked for another account, the token approved is SIM001's: said, and stored under SIM001.
    let mut c = u.cmd();
    User::app_env(&mut c, false, &sim);
    let out = c
        .args([
            "--account",
            "SIM002",
            "login",
            "--request",
            "--listen",
            &listen,
            "--timeout",
            "30",
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("belongs to SIM001, not SIM002: it is stored under SIM001"),
        "{stderr}"
    );
    let status = u.run(&["--account", "SIM002", "token", "status"]);
    assert_ne!(status.code, 0, "SIM002 got no token: {}", status.stdout);
    let status = u.run(&["--account", "SIM001", "token", "status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);

    // A callback with the right state but no code ends the login with a clear line.
    let (child, url) = u.start_login(false, &[]);
    let state = query(&url).into_iter().find(|(k, _)| k == "state").expect("state").1;
    let no_code = http("GET", &format!("{}?state={state}", sim.own_redirect), None);
    assert_eq!(no_code.status, 400);
    let r = u.finish(child);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("without an authorization code"), "{}", r.stderr);

    // A state from another login is refused; this login times out without storing anything.
    let (child, _url) = u.start_login(false, &["--timeout", "2"]);
    let replay = http("GET", &format!("{}?code=abc&state={state}", sim.own_redirect), None);
    assert_eq!(replay.status, 400);
    let r = u.finish(child);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no login within 2 s"), "{}", r.stderr);
}

/// `stoxide` with the vault in `dir` and no server at all.
fn run_offline(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = stoxide();
    c.env("STOXIDE_DATA_DIR", dir);
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.args(args).output().expect("run"))
}

#[test]
fn broken_vaults_keys_and_token_files_get_one_line_and_nothing_is_lost() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().join("vault");
    let files = tempfile::tempdir().expect("tempdir");
    let run = |env: &[(&str, &str)], args: &[&str]| run_offline(&dir, env, args);
    let file = |name: &str, content: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, content).expect("write");
        p.to_str().expect("path").to_owned()
    };

    // An expired token, imported without asking Upstox.
    let old = file(
        "old.json",
        r#"{"access_token":"sim_at_expired_0123456789abcdef","user_id":"SIM009","issued_at":"1731412800000","expires_at":"1731448800000"}"#,
    );
    let r = run(&[], &["token", "import", "--offline", &old]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&[], &["token", "status"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stdout.contains("expired") && r.stdout.contains("03:30 IST"),
        "{}",
        r.stdout
    );
    let r = run(&[], &["doctor"]);
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains("✗ not past its 03:30 IST expiry"), "{}", r.stdout);
    assert!(r.stdout.contains("stoxide login --account SIM009"), "{}", r.stdout);

    // Token files that are not tokens.
    let jwt_cut = file("cut", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQkMxMjM");
    assert_one_line_error(
        &run(&[], &["token", "import", "--offline", "--account", "X1", &jwt_cut]),
        "looks truncated",
    );
    assert_one_line_error(
        &run(
            &[],
            &["token", "import", "--offline", "--account", "X1", &file("empty", "\n")],
        ),
        "is empty",
    );
    assert_one_line_error(
        &run(
            &[],
            &[
                "token",
                "import",
                "--offline",
                &file("half.json", r#"{"access_token": "sim_at_"#),
            ],
        ),
        "not valid JSON",
    );

    // Keys: malformed, wrong, missing.
    assert_one_line_error(
        &run(&[("STOXIDE_VAULT_KEY", "1234")], &["token", "status"]),
        "64 hex digits",
    );
    let wrong = "ab".repeat(32);
    assert_one_line_error(
        &run(&[("STOXIDE_VAULT_KEY", wrong.as_str())], &["token", "status"]),
        "does not open",
    );
    let key = dir.join("vault.key");
    let key_bytes = std::fs::read(&key).expect("key");
    std::fs::rename(&key, files.path().join("key.bak")).expect("mv");
    assert_one_line_error(&run(&[], &["token", "status"]), "its key is missing");
    assert!(!key.exists(), "a lost key is not silently replaced");
    std::fs::rename(files.path().join("key.bak"), &key).expect("mv back");

    // A damaged database is refused and left as it was.
    let db = dir.join("vault.db");
    let good = std::fs::read(&db).expect("db");
    std::fs::write(&db, b"garbage, not SQLite").expect("damage");
    assert_one_line_error(&run(&[], &["token", "status"]), "damaged or not a stoxide vault");
    assert_eq!(std::fs::read(&db).expect("db"), b"garbage, not SQLite");
    std::fs::write(&db, &good).expect("restore");
    let r = run(&[], &["token", "status"]);
    assert!(
        r.stdout.contains("SIM009"),
        "the restored vault works again: {}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(std::fs::read(&key).expect("key"), key_bytes);
}

#[test]
fn a_vault_keyed_from_the_environment_rotates_to_the_new_variable() {
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let token = files.path().join("t.json");
    std::fs::write(
        &token,
        r#"{"access_token":"sim_at_env_key_0123456789abcdef","user_id":"SIM007","issued_at":"1731412800000"}"#,
    )
    .expect("write");
    let (old, new) = ("1f".repeat(32), "2e".repeat(32));
    let run = |env: &[(&str, &str)], args: &[&str]| run_offline(data.path(), env, args);
    let r = run(
        &[("STOXIDE_VAULT_KEY", old.as_str())],
        &["token", "import", "--offline", token.to_str().expect("path")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !data.path().join("vault.key").exists(),
        "an environment key writes no key file"
    );

    assert_one_line_error(
        &run(&[("STOXIDE_VAULT_KEY", old.as_str())], &["vault", "rotate-key"]),
        "STOXIDE_VAULT_NEW_KEY",
    );
    let both = [
        ("STOXIDE_VAULT_KEY", old.as_str()),
        ("STOXIDE_VAULT_NEW_KEY", new.as_str()),
    ];
    let r = run(&both, &["vault", "rotate-key"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("now set STOXIDE_VAULT_KEY"), "{}", r.stdout);
    // While the variables are switched, both keys open it (so machines sharing a database follow
    // at once), with a warning to finish the switch.
    let r = run(&both, &["token", "export"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("rotated to STOXIDE_VAULT_NEW_KEY"), "{}", r.stderr);
    // The old key alone no longer opens it, and says which key it lacks.
    assert_one_line_error(
        &run(&[("STOXIDE_VAULT_KEY", old.as_str())], &["token", "export"]),
        "which is not held here",
    );
    let r = run(&[("STOXIDE_VAULT_KEY", new.as_str())], &["token", "export"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "sim_at_env_key_0123456789abcdef");
}
