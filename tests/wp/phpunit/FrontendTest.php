<?php
/**
 * [kyc_verify] and the block: what a person sees in each state, from the real bridge.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Frontend;

/**
 * Shortcode output per state.
 */
class FrontendTest extends TestCase {

	/**
	 * Render [kyc_verify] for the current user.
	 *
	 * @param string $type User type.
	 * @return string
	 */
	private function verify( $type = 'investor' ) {
		return do_shortcode( '[kyc_verify type="' . $type . '"]' );
	}

	public function test_not_started_shows_button_and_accessible_consent_modal() {
		$this->log_in( 'nobody-yet@example.test' );
		$html = $this->verify();
		$this->assertStringContainsString( 'data-status="not_started"', $html );
		$this->assertStringContainsString( 'class="kycb-open', $html );
		$this->assertStringContainsString( 'Verify identity', $html );
		$this->assertMatchesRegularExpression( '/role="dialog" aria-modal="true" aria-labelledby="(kycb-\d+)-title" aria-describedby="\1-intro"/', $html );
		foreach ( array( 'share_with_persona', 'persona_retention', 'gdpr_processing' ) as $box ) {
			$this->assertMatchesRegularExpression( '/<input type="checkbox" id="(kycb-\d+-' . $box . ')" name="' . $box . '" value="yes" required[^>]*> <label for="\1">/', $html );
		}
		$this->assertMatchesRegularExpression( '/<button type="submit" class="kycb-submit[^"]*" disabled aria-disabled="true"/', $html );
		// The texts and version come from the bridge's consent text.
		$this->assertStringContainsString( 'shared with Persona', $html );
		$this->assertStringContainsString( 'name="text_version" value="' . self::fixtures()['consent_version'] . '"', $html );
		$this->assertStringNotContainsString( self::fixtures()['bridge_token'], $html );
		$this->assertTrue( wp_script_is( 'kycb-verify', 'enqueued' ) );
	}

	public function test_config_for_the_script_has_nonce_rest_route_and_pinned_persona_but_no_token() {
		$this->log_in( 'nobody-yet@example.test' );
		$html = $this->verify();
		$this->assertSame( 1, preg_match( '/data-kycb="([^"]+)"/', $html, $m ) );
		$config = json_decode( html_entity_decode( $m[1] ), true );
		$this->assertSame( rest_url( 'kyc-bridge/v1/sessions' ), $config['rest'] );
		$this->assertSame( 1, wp_verify_nonce( $config['nonce'], 'wp_rest' ) );
		$this->assertSame( 'investor', $config['type'] );
		$this->assertStringNotContainsString( self::fixtures()['bridge_token'], $m[1] );
		// The test site filters the script URL to the local stand-in; the default is the pinned CDN URL.
		$this->assertStringEndsWith( '/persona-standin.js', $config['personaScript'] );
		global $wp_filter;
		$saved = $wp_filter['kycb_persona_script_url'];
		remove_all_filters( 'kycb_persona_script_url' );
		try {
			$this->assertSame( 'https://cdn.withpersona.com/dist/persona-v' . \KycBridge\PERSONA_JS_VERSION . '.js', Frontend::persona_script_url() );
		} finally {
			$wp_filter['kycb_persona_script_url'] = $saved; // phpcs:ignore WordPress.WP.GlobalVariablesOverride
		}
		$this->assertMatchesRegularExpression( '/^\d+\.\d+\.\d+$/', \KycBridge\PERSONA_JS_VERSION );
	}

	public function test_approved_shows_verified_without_button() {
		$this->log_in( self::fixtures()['people']['approved_investor']['email'] );
		$html = $this->verify();
		$this->assertStringContainsString( 'data-status="approved"', $html );
		$this->assertStringContainsString( 'Your identity is verified.', $html );
		$this->assertStringNotContainsString( 'kycb-open', $html );
		$this->assertStringNotContainsString( 'role="dialog"', $html );
	}

	public function test_needs_review_says_we_are_checking() {
		$this->log_in( self::fixtures()['people']['review']['email'] );
		$html = $this->verify();
		$this->assertStringContainsString( 'data-status="needs_review"', $html );
		$this->assertStringContainsString( 'We are checking your documents', $html );
		$this->assertStringNotContainsString( 'kycb-open', $html );
	}

	public function test_pending_offers_to_continue_and_declined_offers_nothing() {
		$this->log_in( self::fixtures()['people']['pending']['email'] );
		$html = $this->verify();
		$this->assertStringContainsString( 'data-status="pending"', $html );
		$this->assertStringContainsString( 'Continue verification', $html );

		$this->log_in( self::fixtures()['people']['declined']['email'] );
		$html = $this->verify( 'vendor' );
		$this->assertStringContainsString( 'data-status="declined"', $html );
		$this->assertStringNotContainsString( 'kycb-open', $html );
	}

	public function test_the_message_and_button_follow_the_bridges_retry_rule() {
		$this->assertTrue( \KycBridge\Status::describe( 'declined', true )['can_start'] );
		$this->assertFalse( \KycBridge\Status::describe( 'declined' )['can_start'] );
		$this->assertFalse( \KycBridge\Status::describe( 'failed', false )['can_start'] );
		$this->assertStringContainsString( 'contact us', \KycBridge\Status::describe( 'expired', false )['message'] );
		$this->assertTrue( \KycBridge\Status::describe( 'failed' )['can_start'] );

		// A bridge that says a failed verification may not be retried: no button, "contact us".
		$email = 'retry-rule@example.test';
		$this->log_in( $email );
		$html = $this->with_kyc_answer(
			$email,
			array(
				'status'    => 'failed',
				'user_type' => 'investor',
				'level'     => 'enhanced',
				'may_retry' => false,
			),
			fn() => $this->verify( 'investor' )
		);
		$this->assertStringContainsString( 'data-status="failed"', $html );
		$this->assertStringContainsString( 'Please contact us.', $html );
		$this->assertStringNotContainsString( 'kycb-open', $html );
	}

	public function test_state_is_per_user_type() {
		// Approved as investor, nothing yet as vendor.
		$this->log_in( self::fixtures()['people']['approved_investor']['email'] );
		$this->assertStringContainsString( 'data-status="not_started"', $this->verify( 'vendor' ) );
	}

	public function test_logged_out_gets_a_login_link_and_no_button() {
		$html = $this->verify();
		$this->assertStringContainsString( 'wp-login.php', $html );
		$this->assertStringNotContainsString( 'kycb-open', $html );
	}

	public function test_link_visitor_gets_the_button_with_the_token() {
		$_GET['kyc_link'] = self::fixtures()['link_token'];
		$html             = $this->verify();
		$this->assertStringContainsString( 'kycb-open', $html );
		$this->assertSame( 1, preg_match( '/data-kycb="([^"]+)"/', $html, $m ) );
		$config = json_decode( html_entity_decode( $m[1] ), true );
		$this->assertSame( self::fixtures()['link_token'], $config['link'] );

		$_GET['kyc_link'] = '<script>alert(1)</script>';
		$this->assertStringNotContainsString( 'kycb-open', $this->verify(), 'a malformed token is ignored' );
	}

	public function test_bridge_down_shows_unavailable_and_no_button() {
		$this->log_in( 'nobody-yet@example.test' );
		$this->bridge_down();
		$html = $this->verify();
		$this->assertStringContainsString( 'data-status="unavailable"', $html );
		$this->assertStringNotContainsString( 'kycb-open', $html );
	}

	public function test_block_renders_the_same_widget_server_side() {
		$this->assertTrue( \WP_Block_Type_Registry::get_instance()->is_registered( 'kyc-bridge/verify' ) );
		$this->log_in( self::fixtures()['people']['approved_customer']['email'] );
		$html = do_blocks( '<!-- wp:kyc-bridge/verify {"userType":"customer"} /-->' );
		$this->assertStringContainsString( 'data-status="approved"', $html );
		$html = do_blocks( '<!-- wp:kyc-bridge/verify {"userType":"vendor"} /-->' );
		$this->assertStringContainsString( 'data-status="not_started"', $html );
		$this->assertStringContainsString( 'kycb-open', $html );
	}
}
