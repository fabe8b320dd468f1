<?php
/**
 * PHPUnit bootstrap: WordPress is already loaded (load-wordpress.php, see there); checks that
 * the plugin is active and loads the base test case.
 *
 * @package KycBridge
 */

if ( ! defined( 'ABSPATH' ) ) {
	fwrite( STDERR, "WordPress is not loaded: run PHPUnit with php -d auto_prepend_file=tests/wp/phpunit/load-wordpress.php\n" );
	exit( 1 );
}
if ( ! class_exists( '\KycBridge\Plugin' ) ) {
	fwrite( STDERR, "The kyc-bridge plugin is not active in the test site.\n" );
	exit( 1 );
}

require __DIR__ . '/TestCase.php';
