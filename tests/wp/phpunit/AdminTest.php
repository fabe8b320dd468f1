<?php
/**
 * Admin page, its capability, the Users column, and uninstall.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Admin_Page;
use KycBridge\Lifecycle;
use KycBridge\Settings;

/**
 * KYC Verifications page.
 */
class AdminTest extends TestCase {

	public function test_capability_is_granted_to_administrators_only() {
		$this->assertTrue( get_role( 'administrator' )->has_cap( Lifecycle::CAPABILITY ) );
		$this->assertFalse( get_role( 'editor' )->has_cap( Lifecycle::CAPABILITY ) );
		$this->assertFalse( get_role( 'subscriber' )->has_cap( Lifecycle::CAPABILITY ) );
	}

	public function test_page_refuses_users_without_the_capability() {
		$this->log_in( 'admin-page-editor@example.test', 'editor' );
		$this->expectException( WP_Die_Exception::class );
		$this->output( array( Admin_Page::class, 'render' ) );
	}

	public function test_page_shows_chart_funnel_queue_and_rows() {
		wp_set_current_user( 1 );
		$html = $this->output( array( Admin_Page::class, 'render' ) );
		$this->assertStringContainsString( '<svg class="kycb-chart"', $html );
		$this->assertMatchesRegularExpression( '/data-status="approved" data-count="[1-9]\d*"/', $html );
		$this->assertStringContainsString( 'data-step="consented"', $html );
		foreach ( array( 'approved_investor', 'review', 'declined' ) as $key ) {
			$inquiry = self::fixtures()['people'][ $key ]['inquiry_id'];
			$this->assertStringContainsString( 'data-inquiry-id="' . $inquiry . '"', $html );
			$this->assertStringContainsString( 'https://app.withpersona.com/dashboard/inquiries/' . $inquiry, $html );
		}
		$this->assertMatchesRegularExpression( '/class="kycb-queue-row[^"]*" data-inquiry-id="' . self::fixtures()['people']['review']['inquiry_id'] . '"/', $html );
		$this->assertStringContainsString( 'target: 24 hours', $html );
	}

	public function test_table_filters_by_status_and_email() {
		wp_set_current_user( 1 );
		$_GET['status'] = 'declined';
		$html           = $this->output( array( Admin_Page::class, 'render' ) );
		$this->assertStringContainsString( 'data-inquiry-id="' . self::fixtures()['people']['declined']['inquiry_id'] . '" data-status="declined"', $html );
		$this->assertDoesNotMatchRegularExpression( '/class="kycb-row" data-inquiry-id="[^"]+" data-status="(?!declined)/', $html );

		$_GET = array( 'email' => self::fixtures()['people']['review']['email'] );
		$html = $this->output( array( Admin_Page::class, 'render' ) );
		$this->assertSame( 1, preg_match_all( '/class="kycb-row"/', $html ) );
	}

	public function test_bridge_down_shows_a_notice_not_an_error() {
		wp_set_current_user( 1 );
		$this->bridge_down();
		$html = $this->output( array( Admin_Page::class, 'render' ) );
		$this->assertStringContainsString( 'notice-error', $html );
		$this->assertStringContainsString( 'unreachable', $html );
	}

	public function test_users_screen_has_a_kyc_column() {
		wp_set_current_user( 1 );
		$columns = apply_filters( 'manage_users_columns', array() );
		$this->assertArrayHasKey( 'kycb_kyc', $columns );
		$approved = $this->user( self::fixtures()['people']['approved_investor']['email'] );
		$value    = apply_filters( 'manage_users_custom_column', '', 'kycb_kyc', $approved );
		$this->assertStringContainsString( 'kycb-status--approved', $value );
		$this->assertStringContainsString( 'enhanced', $value );

		$this->log_in( 'users-column-subscriber@example.test' );
		$this->assertArrayNotHasKey( 'kycb_kyc', apply_filters( 'manage_users_columns', array() ) );
	}

	public function test_uninstall_removes_options_transients_and_capability() {
		$settings = get_option( Settings::OPTION );
		$token    = Settings::token();
		set_transient( 'kycb_kyc_test', array( 'status' => 'approved' ), 60 );
		try {
			if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
				define( 'WP_UNINSTALL_PLUGIN', 'kyc-bridge/kyc-bridge.php' );
			}
			include WP_PLUGIN_DIR . '/kyc-bridge/uninstall.php';
			$this->assertFalse( get_option( Settings::OPTION ) );
			$this->assertFalse( get_option( Settings::TOKEN_OPTION ) );
			$this->assertFalse( get_transient( 'kycb_kyc_test' ) );
			$this->assertFalse( get_role( 'administrator' )->has_cap( Lifecycle::CAPABILITY ) );
		} finally {
			Lifecycle::activate();
			update_option( Settings::OPTION, $settings );
			Settings::set_token( $token );
		}
		$this->assertTrue( get_role( 'administrator' )->has_cap( Lifecycle::CAPABILITY ) );
	}
}
