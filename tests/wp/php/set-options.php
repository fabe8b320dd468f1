<?php
/**
 * Test helper: merge JSON (argv[1]) into the plugin's settings and drop cached bridge answers.
 */

$wp_url                 = getenv( 'WP_URL' );
$_SERVER['HTTP_HOST']   = parse_url( $wp_url, PHP_URL_HOST ) . ':' . parse_url( $wp_url, PHP_URL_PORT );
$_SERVER['REQUEST_URI'] = '/';
require getenv( 'WP_DIR' ) . '/wp-load.php';

$changes = json_decode( $argv[1], true );
update_option( 'kycb_settings', array_merge( \KycBridge\Settings::get(), $changes ) );
\KycBridge\Lifecycle::delete_transients();
echo "ok\n";
