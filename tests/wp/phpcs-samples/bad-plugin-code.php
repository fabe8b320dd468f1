<?php
/**
 * Deliberately bad plugin code: tests/test_wp_plugin.py checks that the ruleset in
 * wp-plugin/phpcs.xml.dist reports each mistake. Never loaded by WordPress.
 *
 * @package KycBridge
 */

/**
 * Unescaped output, raw input, no nonce, debug output, short arrays, space indentation.
 */
function kycb_bad_examples() {
	echo $_POST['name'];
	$name = sanitize_text_field( $_GET['q'] );
	echo "<p>Hello $name</p>";
	printf( '<a href="%s">%s</a>', $name, esc_html( $name ) );
	_e( 'Hello', 'kyc-bridge' );
	print_r( [ 1, 2 ] );
    return json_encode( $name );
}
