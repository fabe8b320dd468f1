<?php
/**
 * Settings: sanitising, the token (not autoloaded, masked, never printed), Test connection.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Bridge_Client;
use KycBridge\Settings;

/**
 * Settings page and connection test.
 */
class SettingsTest extends TestCase {

	public function test_sanitize_normalises_url_and_rejects_bad_values() {
		$this->settings(
			array(
				'bridge_url'     => 'https://kyc.example.com',
				'environment_id' => 'env_wptest123',
			)
		);
		$clean = Settings::sanitize(
			array(
				'bridge_url'     => ' https://bridge.example.com:8443/ ',
				'user_type'      => 'vendor',
				'flow'           => 'hosted',
				'environment_id' => 'env_ABC123',
				'gate_message'   => '<script>x</script>Members only',
			)
		);
		$this->assertSame( 'https://bridge.example.com:8443', $clean['bridge_url'] );
		$this->assertSame( 'vendor', $clean['user_type'] );
		$this->assertSame( 'hosted', $clean['flow'] );
		$this->assertSame( 'env_ABC123', $clean['environment_id'] );
		$this->assertSame( 'Members only', $clean['gate_message'] );

		$bad = Settings::sanitize(
			array(
				'bridge_url'     => 'javascript:alert(1)',
				'user_type'      => 'admin',
				'flow'           => 'popup',
				'environment_id' => 'production" onclick="x',
			)
		);
		$this->assertSame( 'https://kyc.example.com', $bad['bridge_url'], 'a bad URL keeps the saved one' );
		$this->assertSame( 'customer', $bad['user_type'] );
		$this->assertSame( 'embedded', $bad['flow'] );
		$this->assertSame( 'env_wptest123', $bad['environment_id'], 'a bad environment id keeps the saved one' );
		$codes = wp_list_pluck( get_settings_errors( Settings::OPTION ), 'code' );
		$this->assertContains( 'kycb_bridge_url', $codes );
		$this->assertContains( 'kycb_environment_id', $codes );
		$this->assertSame( '', Settings::sanitize_bridge_url( 'https://bridge.example.com/?x=1' ) );
		$this->assertSame( 'http://127.0.0.1:8000', Settings::sanitize_bridge_url( 'http://127.0.0.1:8000/' ) );
	}

	public function test_token_is_stored_apart_without_autoload_and_blank_keeps_it() {
		global $wpdb;
		$clean = Settings::sanitize(
			array(
				'bridge_url'   => 'https://kyc.example.com',
				'bridge_token' => 'tok-secret-123456',
			)
		);
		$this->assertArrayNotHasKey( 'bridge_token', $clean, 'the token is not part of the autoloaded settings' );
		$this->assertSame( 'tok-secret-123456', Settings::token() );
		$autoload = $wpdb->get_var( $wpdb->prepare( "SELECT autoload FROM {$wpdb->options} WHERE option_name = %s", Settings::TOKEN_OPTION ) );
		$this->assertSame( 'no', $autoload );

		Settings::sanitize( array( 'bridge_token' => '' ) );
		$this->assertSame( 'tok-secret-123456', Settings::token(), 'an empty field keeps the saved token' );

		Settings::sanitize( array( 'bridge_token_clear' => '1' ) );
		$this->assertSame( '', Settings::token() );
	}

	public function test_token_is_masked_and_never_printed() {
		Settings::set_token( 'tok-never-shown-987654' );
		$field = $this->output( array( Settings::class, 'field_bridge_token' ) );
		$this->assertStringNotContainsString( 'tok-never-shown', $field );
		$this->assertStringNotContainsString( '7654', $field );
		$this->assertStringContainsString( '••••', $field );
		$this->assertStringContainsString( 'type="password"', $field );
		$this->assertStringContainsString( 'value=""', $field );

		wp_set_current_user( 1 );
		Settings::register();
		$page = $this->output( array( Settings::class, 'render_page' ) );
		$this->assertStringNotContainsString( 'tok-never-shown', $page );
		$this->assertStringContainsString( 'kycb_test_connection', $page );
		$this->assertMatchesRegularExpression( '/name="_wpnonce" value="[0-9a-f]+"/', $page );
	}

	public function test_settings_page_requires_manage_options() {
		$this->log_in( 'settings-subscriber@example.test' );
		$this->expectException( WP_Die_Exception::class );
		$this->output( array( Settings::class, 'render_page' ) );
	}

	public function test_connection_ok_against_the_real_bridge() {
		$result = Settings::test_connection();
		$this->assertTrue( $result['ok'], $result['message'] );
	}

	public function test_connection_names_the_read_only_token() {
		$this->assertSame( 'ok', Settings::test_connection()['code'] );
		Settings::set_token( self::fixtures()['bridge_read_token'] );
		$result = Settings::test_connection();
		$this->assertTrue( $result['ok'] );
		$this->assertSame( 'ok_read_only', $result['code'] );
		$this->assertStringContainsString( 'need BRIDGE_ADMIN_TOKEN', $result['message'] );
		// The front end works with it; the admin page says what is missing.
		$this->assertSame( 'approved', \KycBridge\Kyc_Lookup::lookup( self::fixtures()['people']['approved_investor']['email'] )['status'] );
		wp_set_current_user( 1 );
		$html = $this->output( array( \KycBridge\Admin_Page::class, 'render' ) );
		$this->assertStringContainsString( 'read-only BRIDGE_READ_TOKEN', $html );
	}

	public function test_connection_says_bad_token() {
		Settings::set_token( 'wrong-token' );
		$result = Settings::test_connection();
		$this->assertFalse( $result['ok'] );
		$this->assertSame( 'kycb_bad_token', $result['code'] );
		$this->assertStringContainsString( 'token', $result['message'] );
	}

	public function test_connection_says_unreachable() {
		$this->bridge_down();
		$result = Settings::test_connection();
		$this->assertSame( 'kycb_unreachable', $result['code'] );
		$this->assertStringContainsString( 'unreachable', $result['message'] );
	}

	public function test_connection_says_bad_tls() {
		// https:// to the bridge's plain-http port: the TLS handshake fails.
		$this->settings( array( 'bridge_url' => str_replace( 'http://', 'https://', self::fixtures()['bridge_url'] ) ) );
		$result = Settings::test_connection();
		$this->assertSame( 'kycb_tls', $result['code'], $result['message'] );
		$this->assertStringContainsString( 'TLS', $result['message'] );
	}

	public function test_connection_says_not_ready_and_not_configured() {
		$this->assertSame( 'kycb_not_ready', Bridge_Client::http_error( 503, array( 'error' => 'store unreachable' ) )->get_error_code() );
		$this->settings( array( 'bridge_url' => '' ) );
		$this->assertSame( 'kycb_not_configured', Settings::test_connection()['code'] );
	}

	public function test_connection_button_checks_capability_and_nonce() {
		$this->log_in( 'conn-subscriber@example.test' );
		try {
			Settings::handle_test_connection();
			$this->fail( 'a subscriber may not test the connection' );
		} catch ( WP_Die_Exception $e ) {
			$this->assertSame( 403, $e->getCode() );
		}

		wp_set_current_user( 1 );
		$_REQUEST['_wpnonce'] = 'bad-nonce';
		try {
			Settings::handle_test_connection();
			$this->fail( 'a bad nonce must be refused' );
		} catch ( WP_Die_Exception $e ) {
			$this->assertStringContainsString( 'link you followed has expired', $e->getMessage() );
		}

		$_REQUEST['_wpnonce'] = wp_create_nonce( 'kycb_test_connection' );
		try {
			Settings::handle_test_connection();
			$this->fail( 'expected a redirect back to the settings page' );
		} catch ( Redirect_Exception $e ) {
			$this->assertStringContainsString( 'page=kyc-bridge', $e->getMessage() );
		} finally {
			unset( $_REQUEST['_wpnonce'] );
		}
		$result = get_transient( 'kycb_conn_1' );
		$this->assertTrue( $result['ok'] );
	}
}
