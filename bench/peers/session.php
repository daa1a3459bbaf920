<?php
// php-fpm peer: the same scenarios with PHP's own sessions on Redis
// (session.save_handler = redis). Routes mirror session-lab's.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
header('Content-Type: text/plain');
if ($path === '/hello') { echo 'hello'; exit; }
// Uploads: as session-lab's POST /upload, a line per part with its SHA-256
// ($_FILES: PHP has already spooled each file to its upload_tmp_dir).
if ($path === '/upload') {
    foreach ($_POST as $name => $value) { printf("%s\t-\t%d\t%s\n", $name, strlen($value), hash('sha256', $value)); }
    foreach ($_FILES as $name => $file) {
        printf("%s\t%s\t%d\t%s\n", $name, $file['name'], $file['size'], hash_file('sha256', $file['tmp_name']));
    }
    exit;
}
// Downloads: as session-lab's GET /download/:bytes, the file bench/run made
// (pattern-N.bin in GIMLET_BENCH_FILES), sent by PHP (readfile) or, with
// ?offload=1, by nginx (X-Accel-Redirect to the internal /protected/ location).
if (preg_match('#^/download/([0-9]{1,10})$#', $path, $m)) {
    $name = "pattern-{$m[1]}.bin";
    $file = getenv('GIMLET_BENCH_FILES') . '/' . $name;
    if (!is_file($file)) { http_response_code(404); echo 'not found'; exit; }
    header('Content-Type: application/octet-stream');
    if (($_GET['offload'] ?? '') === '1') { header("X-Accel-Redirect: /protected/$name"); exit; }
    header('Content-Length: ' . filesize($file));
    readfile($file);
    exit;
}
session_start();
if (preg_match('#^/set/([^/]+)/([^/]+)$#', $path, $m)) {
    $_SESSION[$m[1]] = $m[2];
    echo 'ok';
} elseif (preg_match('#^/get/([^/]+)$#', $path, $m)) {
    if (!isset($_SESSION[$m[1]])) { http_response_code(404); echo "key {$m[1]} not found"; }
    else { echo $_SESSION[$m[1]]; }
} elseif ($path === '/counter') {
    $_SESSION['counter'] = ($_SESSION['counter'] ?? 0) + 1;
    echo $_SESSION['counter'];
} else {
    http_response_code(404);
    echo 'not found';
}
