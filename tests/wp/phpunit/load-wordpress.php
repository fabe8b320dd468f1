<?php
/**
 * Loads the real test WordPress in the global scope, before PHPUnit starts:
 *
 *   php -d auto_prepend_file=tests/wp/phpunit/load-wordpress.php /usr/bin/phpunit -c tests/wp/phpunit.xml.dist
 *
 * (PHPUnit includes its bootstrap file inside a method and then copies that method's variables
 * into $GLOBALS, which would overwrite WordPress globals such as $shortcode_tags.)
 *
 * Environment (set by tests/test_wp_plugin.py): WP_DIR, WP_URL, KYCB_TEST_FIXTURES (JSON file).
 *
 * @package KycBridge
 */

if ( ! getenv( 'WP_URL' ) || ! getenv( 'WP_DIR' ) || ! getenv( 'KYCB_TEST_FIXTURES' ) ) {
	fwrite( STDERR, "Run through tests/test_wp_plugin.py: WP_DIR, WP_URL and KYCB_TEST_FIXTURES are needed.\n" );
	exit( 1 );
}
$_SERVER['HTTP_HOST']   = parse_url( getenv( 'WP_URL' ), PHP_URL_HOST ) . ':' . parse_url( getenv( 'WP_URL' ), PHP_URL_PORT );
$_SERVER['SERVER_NAME'] = parse_url( getenv( 'WP_URL' ), PHP_URL_HOST );
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';

require getenv( 'WP_DIR' ) . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/admin.php';
