"""`rvlf app` in a real browser: Debian's Chromium, headless, driven by Selenium through chromedriver.

The app runs as `rvlf app` in its own process on 127.0.0.1 with the demo-shaped tiny GRPO
checkpoint, recorded as trained on the rvlf synthetic demo language (its `training_data.json`
says so, as `rvlf demo`'s checkpoints do): the page must say so at the top and beside the
translation. The browser uploads the real signer video and must show the translation that
`SignTranslator.translate` gives for the same file; a non-video must give the error line. Its
camera is Chromium's fake camera playing the same video (`--use-fake-device-for-media-stream`,
a .y4m made with PyAV): a clip recorded on the page must be translated as the API translates
the recorded file. Every request the page makes must go to the app itself (no analytics, fonts or
CDN). Screenshots are saved in each test's tmp_path (or `$RVLF_SCREENSHOTS`). The app's own
process runs behind a stand-in proxy that records any request it would send out. `make test`
installs chromium and chromium-driver when run as root with apt-get (CI); without them these tests
skip naming what to install, or fail when RVLF_REQUIRE_BROWSER=1 (which `make test` sets as root:
CI must run them).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from helpers import REPO

CHROMIUM = Path(os.environ.get("RVLF_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("RVLF_CHROMEDRIVER", "/usr/bin/chromedriver"))
TRANSLATION = "#rvlf-translation textarea"
STATUS = "#rvlf-status"
DEMO_RECORD = {"name": "rvlf synthetic demo language", "dataset": "manifest", "language": "en", "synthetic": True}


def _screenshot(driver, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("RVLF_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / name
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"\nscreenshot: {shot}")
    return shot


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProxySentinel:
    """A stand-in HTTP(S) proxy on 127.0.0.1 that answers nothing: with HTTP(S)_PROXY pointing here,
    any request the app's process makes to the outside (analytics, version checks, hub, fonts) is
    recorded in `seen` (and fails)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.seen.append(conn.recv(1024).split(b"\r\n", 1)[0].decode("latin-1"))
                except OSError:
                    self.seen.append("(connection without a request)")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="module")
def proxy():
    sentinel = ProxySentinel()
    yield sentinel
    sentinel.close()


@pytest.fixture(scope="module")
def demo_checkpoint(tiny_grpo_run, tmp_path_factory) -> Path:
    """The tiny GRPO checkpoint, its record saying it was trained on the synthetic demo language."""
    import shutil

    ckpt = tmp_path_factory.mktemp("demo-ckpt") / "best"
    shutil.copytree(tiny_grpo_run / "best", ckpt)
    (ckpt / "training_data.json").write_text(json.dumps(DEMO_RECORD))
    return ckpt


@pytest.fixture(scope="module")
def app_url(demo_checkpoint, tmp_path_factory, proxy):
    """`rvlf app --checkpoint RUN/best --port N` in a subprocess; its URL once it answers."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    env.pop("GRADIO_ANALYTICS_ENABLED", None)  # the app must switch analytics off by itself
    env.pop("HF_HUB_OFFLINE", None)  # and make no hub request while it may
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env[name] = proxy.url
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rvlf", "app", "--checkpoint", str(demo_checkpoint),
                                 "--port", str(port), "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=str(tmp_path_factory.mktemp("app-cwd")))
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rvlf app exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"rvlf app did not answer on {url}:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert "gradio.live" not in text and "Traceback" not in text, text[-3000:]


@pytest.fixture(scope="module", autouse=True)
def browser_installed():
    """Before anything starts (autouse): skip naming what to install, or fail with RVLF_REQUIRE_BROWSER=1."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            why = (f"{path} not found: install Debian's {package} (apt-get install chromium chromium-driver; "
                   "`make test` does this when run as root)")
            if os.environ.get("RVLF_REQUIRE_BROWSER") == "1":
                pytest.fail(why)
            pytest.skip(why)


@pytest.fixture(scope="module")
def browser(fixtures_dir, tmp_path_factory):
    """Headless Chromium (Debian's package) through its chromedriver, logging every network request.
    Host names other than 127.0.0.1 do not resolve, so an external request fails fast and is seen.
    Its camera is a fake one playing the real signer video (made into a .y4m with PyAV), granted
    without asking."""
    from media_helpers import write_y4m

    camera = write_y4m(fixtures_dir / "signer_58frames.mp4", tmp_path_factory.mktemp("camera") / "signer.y4m")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1800", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()



def _assert_page_shows(browser, shown: str, expected: str, status: str) -> None:
    """The translation box holds `expected` (the API's text for the same file). The page fills its outputs
    one by one: the status line can be there a moment before the text box, so wait up to 30 s for it."""
    try:
        shown = WebDriverWait(browser, 30, poll_frequency=0.5).until(
            lambda d: (v := d.find_element(By.CSS_SELECTOR, TRANSLATION).get_attribute("value")) == expected and v)
    except TimeoutException:
        pass
    assert shown == expected, f"the page shows {shown!r}, the API translates {expected!r}; status: {status!r}"

def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _upload(driver, url: str, path: Path) -> None:
    driver.get(url)
    field = WebDriverWait(driver, 120).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#rvlf-upload input[type=file]"))
    field.send_keys(str(path))


def _outcome(driver, timeout: float) -> tuple[str, str]:
    """(translation, status text) once the upload's result is on the page."""

    def done(d):
        try:
            text = d.find_element(By.CSS_SELECTOR, TRANSLATION).get_attribute("value")
            status = d.find_element(By.CSS_SELECTOR, STATUS).text
        except WebDriverException:
            return False
        return (text, status) if status.strip() else False  # the status line comes with every result

    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(done)


def _external(urls: list[str], url: str) -> list[str]:
    return [u for u in urls if not u.startswith((url, "data:", "blob:"))]


def test_app_translates_the_uploaded_video_like_the_python_api(app_url, browser, proxy, tiny_grpo_run, fixtures_dir,
                                                                tmp_path):
    from rvlf import SignTranslator

    video = fixtures_dir / "signer_58frames.mp4"
    t0 = time.time()
    _upload(browser, app_url, video)
    shown, status = _outcome(browser, timeout=300)
    seconds = time.time() - t0
    assert "signer_58frames.mp4" in status and "58 frames" in status

    translator = SignTranslator.from_pretrained(tiny_grpo_run / "best", device="cpu")
    width = translator.config.train.num_beams  # the page starts with the checkpoint's width, as the API
    expected = translator.translate(video)
    assert expected, "the tiny model translates the video to nothing: the comparison below would be empty"
    _assert_page_shows(browser, shown, expected, status)

    nbest = " ".join(browser.find_element(By.CSS_SELECTOR, "#rvlf-nbest").text.split())
    assert "Beam n-best" in nbest and f"1 {' '.join(expected.split())} -0." in nbest, nbest
    timings = browser.find_element(By.CSS_SELECTOR, "#rvlf-timings").text
    for part in ("decoding the video", "keypoints (MediaPipe Holistic)", "face/hand crops", "DINOv2 features",
                 f"translation (beam search, width {width})", "drawing keypoints", "total"):
        assert part in timings, timings
    # the demo language is said at the top of the page and beside the translation
    notice = " ".join(browser.find_element(By.CSS_SELECTOR, "#rvlf-notice").text.split())
    assert notice.startswith("Demo model: this model was trained on the rvlf synthetic demo language"), notice
    beside = " ".join(browser.find_element(By.CSS_SELECTOR, "#rvlf-warnings").text.split())
    assert beside.startswith("Not a real translation: this model was trained on the rvlf synthetic demo"), beside
    assert "not a translation of real signing" in beside
    WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#rvlf-video video").get_attribute("src"))
    # the overlay video is one the browser can decode: it reports its size and duration
    size = WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "const v = document.querySelector('#rvlf-video video');"
        "return v && v.readyState >= 1 && v.videoWidth > 0 ? [v.videoWidth, v.videoHeight, v.duration] : null;"))
    assert size[0] > 100 and size[1] > 100 and size[2] > 1.0, size
    _screenshot(browser, tmp_path, "app_demo_notice.png")
    print(f"upload to translation: {seconds:.1f} s")

    urls = _requested_urls(browser)
    assert any(u.startswith(app_url) for u in urls)
    assert not _external(urls, app_url), _external(urls, app_url)
    assert proxy.seen == [], f"the app's process called out: {proxy.seen}"


def test_app_says_which_file_it_cannot_read(app_url, browser, proxy, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("these are meeting notes, not a sign language video\n")
    _upload(browser, app_url, notes)
    shown, status = _outcome(browser, timeout=120)
    status = " ".join(status.split())
    assert shown == ""
    assert "Cannot read notes.txt" in status and "a text file, not a video" in status, status
    assert "Traceback" not in status and "Internal error" not in status
    _screenshot(browser, tmp_path, "app_error.png")
    assert not _external(_requested_urls(browser), app_url)
    assert proxy.seen == [], f"the app's process called out: {proxy.seen}"


def test_a_clip_recorded_with_the_webcam_is_translated_like_the_recorded_file(app_url, browser, proxy,
                                                                              demo_checkpoint, tmp_path):
    from rvlf import SignTranslator

    browser.get(app_url)
    wait = WebDriverWait(browser, 120, poll_frequency=0.5)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#rvlf-webcam button")).click()  # "Click to Access Webcam"
    record = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#rvlf-webcam button.capture-button"))
    wait.until(lambda d: d.execute_script(  # the fake camera's frames are playing in the preview
        "const v = document.querySelector('#rvlf-webcam video'); return v && v.videoWidth > 0;"))
    _screenshot(browser, tmp_path, "app_webcam_ready.png")
    record.click()
    time.sleep(3.0)  # about 75 frames of the looping signer video
    assert "Stop" in record.text, record.text
    record.click()
    shown, status = _outcome(browser, timeout=300)
    status = " ".join(status.split())
    assert status.startswith("webcam recording: ") and "Cannot read" not in status, status
    frames = int(status.split(": ", 1)[1].split(" frames", 1)[0])
    assert frames >= 25, status  # at least a second of the camera's 25 frames/s

    # the recorded file, as the server received it, translates through the API to what the page shows
    src = wait.until(lambda d: d.execute_script(
        "const v = document.querySelector('#rvlf-webcam video'); return v && v.src && v.src.includes('file=') "
        "? v.src : null;"))
    recorded = Path(urllib.request.unquote(src.split("file=", 1)[1]))
    assert recorded.is_file() and recorded.suffix in (".webm", ".mp4"), src
    expected = SignTranslator.from_pretrained(demo_checkpoint, device="cpu").translate(recorded)
    _assert_page_shows(browser, shown, expected, status)
    assert f"{frames} frames" in status and "Not a real translation" in status
    timings = browser.find_element(By.CSS_SELECTOR, "#rvlf-timings").text
    assert "keypoints (MediaPipe Holistic)" in timings and "DINOv2 features" in timings, timings
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "const v = document.querySelector('#rvlf-video video'); return v && v.readyState >= 1 && v.videoWidth > 0;"))
    _screenshot(browser, tmp_path, "app_webcam.png")
    assert not _external(_requested_urls(browser), app_url)
    assert proxy.seen == [], f"the app's process called out: {proxy.seen}"
