<?php
// Router for `php -S` (from ../shared/reference/wordpress.md): static files as they are, real .php
// files run, everything else goes to WordPress's index.php.
$root = $_SERVER['DOCUMENT_ROOT'];
$path = parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH );
if ( '/' !== $path && is_file( $root . $path ) && '.php' !== substr( $path, -4 ) ) {
	return false;
}
if ( '/' !== $path && is_file( $root . $path ) ) {
	chdir( dirname( $root . $path ) );
	$_SERVER['SCRIPT_NAME'] = $path;
	require $root . $path;
	return true;
}
if ( is_dir( $root . $path ) && is_file( $root . rtrim( $path, '/' ) . '/index.php' ) ) {
	chdir( $root . rtrim( $path, '/' ) );
	$_SERVER['SCRIPT_NAME'] = rtrim( $path, '/' ) . '/index.php';
	require $root . rtrim( $path, '/' ) . '/index.php';
	return true;
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
require $root . '/index.php';
