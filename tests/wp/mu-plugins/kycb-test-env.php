<?php
/**
 * Test site only (copied by tests/wp/site.py): Persona's embedded client comes from the local
 * stand-in, never from Persona's CDN.
 *
 * @package KycBridge
 */

add_filter(
	'kycb_persona_script_url',
	function ( $url ) {
		$local = get_option( 'kycb_test_persona_script_url' );
		return $local ? $local : $url;
	}
);
