<?php
// php-fpm peer: the same scenarios with PHP's own sessions on Redis
// (session.save_handler = redis). Routes mirror session-lab's.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
header('Content-Type: text/plain');
if ($path === '/hello') { echo 'hello'; exit; }
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
